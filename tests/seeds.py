"""The conversations of the MemOS add-message docs (../shared/seeds/), as the tests send them."""

QUICK_START_EN = [
    {"role": "user", "content": "I'm planning a trip to Guangzhou during the summer vacation. "
                                "What chain hotels are available for accommodation?"},
    {"role": "assistant", "content": "You can consider [7 Days Inn, JI Hotel, Hilton], etc."},
    {"role": "user", "content": "I choose 7 Days Inn"},
    {"role": "assistant", "content": "Okay, ask me if you have any other questions."},
]
QUICK_START_ZH = [
    {"role": "user", "content": "我暑假定好去广州旅游，住宿的话有哪些连锁酒店可选？"},
    {"role": "assistant", "content": "您可以考虑【七天、全季、希尔顿】等等"},
    {"role": "user", "content": "我选七天"},
    {"role": "assistant", "content": "好的，有其他问题再问我。"},
]
HISTORY_EN = [
    {"role": "user", "content": "I like spicy food", "chat_time": "2025-09-12 08:00:00"},
    {"role": "assistant", "content": "Got it, I remember, you like spicy food.",
     "chat_time": "2025-09-12 08:01:00"},
    {"role": "user", "content": "But I don't really like heavy oil, such as spicy hot pot, "
                                "Mao Xue Wang, etc.", "chat_time": "2025-09-25 12:00:00"},
    {"role": "assistant", "content": "You prefer refreshing and spicy dishes. I can help you "
                                     "recommend some spicy food that suits you~",
     "chat_time": "2025-09-25 12:01:00"},
]
HISTORY_ZH = [
    {"role": "user", "content": "我喜欢吃辣的食物", "chat_time": "2025-09-12 08:00:00"},
    {"role": "assistant", "content": "明白啦，我记住了，你喜欢辣味的食物。",
     "chat_time": "2025-09-12 08:01:00"},
    {"role": "user", "content": "但我又不太喜欢重油的，比如麻辣火锅、毛血旺之类的",
     "chat_time": "2025-09-25 12:00:00"},
    {"role": "assistant", "content": "你更偏好清爽又带辣味的菜。我可以帮你推荐一些适合你的辣味美食哦~",
     "chat_time": "2025-09-25 12:01:00"},
]
QUESTIONNAIRE_EN = """
Favorite movie genres: Sci-Fi, Action, Comedy
Favorite TV series genres: Suspense, Historical Drama
Favorite book types: Popular Science, Technology, Self-growth
Preferred learning methods: Articles, Videos, Podcasts
Exercise habits: Running, Fitness
Dietary preferences: Prefer spicy, Healthy diet
Travel preferences: Natural landscapes, Urban culture, Adventure
Preferred chat style: Humorous, Warm, Casual chat
Types of help desired from AI: Suggestions, Information query, Inspiration
Topics I am most interested in: Artificial Intelligence, Future Technology, Movie Reviews
Things I hope AI can help with: Planning daily study schedules, Recommending movies and books, Providing emotional companionship
      """
QUESTIONNAIRE_ZH = """
喜欢的电影类型: 科幻, 动作, 喜剧
喜欢的电视剧类型: 悬疑, 历史剧
喜欢的书籍类型: 科普, 技术, 自我成长
喜欢的学习方式: 文章, 视频, Podcast
运动习惯: 跑步, 健身
饮食偏好: 偏爱辣, 健康饮食
旅游偏好: 自然景观, 城市文化, 冒险
喜欢的聊天风格: 幽默, 温暖, 轻松闲聊
想让AI提供的帮助类型: 建议, 信息查询, 灵感
我最感兴趣的话题: 人工智能, 未来科技, 电影评论
我希望AI帮助的事情: 规划日常学习计划, 推荐电影和书籍, 提供心情陪伴
      """

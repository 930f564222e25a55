"""The floor of a status request's cold start (README "Cold start"): what the API function
cannot do without, and nothing of Engram. Powertools' resolver with validation, its
logger and metrics, one pydantic model, boto3's DynamoDB resource and one get_item:

    python -m bench.coldstart --code floor=bench/floor --scenarios api-status
"""

import os

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel

app = APIGatewayRestResolver(enable_validation=True)
logger = Logger()
metrics = Metrics(namespace="EngramFloor")
tables = {}


class StatusRequest(BaseModel):
    task_id: str
    user_id: str | None = None


@app.post("/v1/get/status")
def status(body: StatusRequest):  # unannotated: Powertools would validate the answer
    if "tasks" not in tables:
        tables["tasks"] = boto3.resource("dynamodb").Table(os.environ["ENGRAM_TASKS_TABLE"])
    tables["tasks"].get_item(Key={"pk": f"tenant-a#{body.task_id}", "sk": "task"})
    return Response(404, "application/json", '{"code": 404}')


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event, context):
    return app.resolve(event, context)

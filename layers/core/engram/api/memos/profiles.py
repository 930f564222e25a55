"""MemOS's profile routes (/v1): templates (add/get/list profile_template), instances
(bind/profile_template, edit/profile, delete/profile), and the `profile_detail_list`
that search/memory and get/memory carry. Routes → ProfileTranslator → ProfileService."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body

from engram.api.auth import tenant_of
from engram.api.memos.models import Envelope
from engram.api.memos.profile_models import (
    AddProfileTemplateData,
    AddProfileTemplateRequest,
    BindProfileTemplateData,
    BindProfileTemplateRequest,
    BoundProfile,
    DeleteProfileData,
    DeleteProfileRequest,
    EditProfileData,
    EditProfileRequest,
    GetProfileTemplateData,
    ListProfileTemplatesData,
    ListProfileTemplatesRequest,
    ProfileDetail,
    ProfileFieldDetail,
    ProfileTemplateDetail,
    ProfileTemplateIdRequest,
)
from engram.api.openapi import BODY, responses
from engram.models.profiles import ProfileTemplate, ProfileView
from engram.services.profiles import ProfileService


def template_detail(template: ProfileTemplate) -> ProfileTemplateDetail:
    return ProfileTemplateDetail(
        profile_template_id=template.profile_template_id, name=template.name,
        metadata=template.metadata, create_time=template.create_time,
        update_time=template.update_time)


def profile_detail(view: ProfileView) -> ProfileDetail:
    p = view.profile
    subject = {"user_id": p.subject_id} if p.subject_kind == "user" \
        else {"agent_id": p.subject_id}
    return ProfileDetail(
        id=f"{p.profile_template_id}:{p.subject_kind}:{p.subject_id}",
        memory_key=view.template_name, memory_value=view.text,
        profile_template_id=p.profile_template_id, profile_template_name=view.template_name,
        metadata=view.filled, fields=[ProfileFieldDetail(**f.model_dump()) for f in view.fields],
        create_time=p.create_time,
        update_time=max([p.update_time, *(f.update_time for f in view.fields)]), **subject)


@dataclass
class ProfileTranslator:
    profiles: ProfileService

    def add_template(self, tenant_id: str, req: AddProfileTemplateRequest
                     ) -> AddProfileTemplateData:
        template = self.profiles.add_template(tenant_id, req.name, req.metadata)
        return AddProfileTemplateData(profile_template_id=template.profile_template_id)

    def get_template(self, tenant_id: str, template_id: str) -> GetProfileTemplateData:
        return GetProfileTemplateData(
            profile_template=template_detail(self.profiles.template(tenant_id, template_id)))

    def list_templates(self, tenant_id: str, req: ListProfileTemplatesRequest
                       ) -> ListProfileTemplatesData:
        templates = self.profiles.templates(tenant_id)
        start = (req.page - 1) * req.size
        return ListProfileTemplatesData(
            profile_templates=[template_detail(t) for t in templates[start:start + req.size]],
            total=len(templates), current=req.page, size=req.size,
            pages=ceil(len(templates) / req.size))

    def bind(self, tenant_id: str, req: BindProfileTemplateRequest) -> BindProfileTemplateData:
        bound = self.profiles.bind(tenant_id, [(*item.subject, item.profile_template_id)
                                               for item in req.bind_list])
        return BindProfileTemplateData(bound=[BoundProfile(
            profile_template_id=p.profile_template_id,
            **({"user_id": p.subject_id} if p.subject_kind == "user"
               else {"agent_id": p.subject_id})) for p in bound])

    def edit(self, tenant_id: str, req: EditProfileRequest) -> EditProfileData:
        view = self.profiles.edit(tenant_id, *req.subject, req.profile_template_id,
                                  req.metadata, req.remove_fields or [])
        return EditProfileData(profile=profile_detail(view))

    def delete(self, tenant_id: str, req: DeleteProfileRequest) -> DeleteProfileData:
        self.profiles.delete(tenant_id, *req.subject, req.profile_template_id)
        return DeleteProfileData()

    def details(self, tenant_id: str, user_id: str | None,
                agent_id: str | None = None) -> list[ProfileDetail]:
        """The profiles search/memory and get/memory show: the user's, then the agent's."""
        views = self.profiles.views(tenant_id, "user", user_id) if user_id else []
        if agent_id:
            views += self.profiles.views(tenant_id, "agent", agent_id)
        return [profile_detail(v) for v in views]


def profiles_router(profiles: ProfileTranslator) -> Router:
    router = Router()

    @router.post("/add/profile_template", summary="Create a profile template (its fields)",
                 responses=responses(*BODY))
    def add_profile_template(req: Annotated[AddProfileTemplateRequest, Body()]
                             ) -> Envelope[AddProfileTemplateData]:
        return Envelope(data=profiles.add_template(tenant_of(router), req))

    @router.post("/get/profile_template", summary="A profile template and its fields",
                 responses=responses(*BODY, 404))
    def get_profile_template(req: Annotated[ProfileTemplateIdRequest, Body()]
                             ) -> Envelope[GetProfileTemplateData]:
        return Envelope(data=profiles.get_template(tenant_of(router),
                                                   req.profile_template_id))

    @router.post("/list/profile_template", summary="The tenant's profile templates, newest "
                 "first, paged", responses=responses(*BODY))
    def list_profile_template(req: Annotated[ListProfileTemplatesRequest, Body()]
                              ) -> Envelope[ListProfileTemplatesData]:
        return Envelope(data=profiles.list_templates(tenant_of(router), req))

    @router.post("/bind/profile_template", summary="Give users or agents a profile of a "
                 "template (at most 20 per call)", responses=responses(*BODY, 404))
    def bind_profile_template(req: Annotated[BindProfileTemplateRequest, Body()]
                              ) -> Envelope[BindProfileTemplateData]:
        return Envelope(data=profiles.bind(tenant_of(router), req))

    @router.post("/edit/profile", summary="Set, add, lock or remove fields of a profile",
                 responses=responses(*BODY, 404))
    def edit_profile(req: Annotated[EditProfileRequest, Body()]) -> Envelope[EditProfileData]:
        return Envelope(data=profiles.edit(tenant_of(router), req))

    @router.post("/delete/profile", summary="Erase a user's or agent's profile",
                 responses=responses(*BODY, 404))
    def delete_profile(req: Annotated[DeleteProfileRequest, Body()]
                       ) -> Envelope[DeleteProfileData]:
        return Envelope(data=profiles.delete(tenant_of(router), req))

    return router

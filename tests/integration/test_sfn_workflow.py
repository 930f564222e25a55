"""StepFunctionsWorkflow under moto: one execution per task, started idempotently."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from tests.fakes.aws import REGION, aws_credentials  # noqa: F401 - fixture

from engram.adapters.sfn_workflow import StepFunctionsWorkflow
from engram.models.domain import TaskRef

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


@pytest.fixture
def sfn(aws_credentials):  # noqa: F811 - the fixture imported above
    with mock_aws():
        yield boto3.client("stepfunctions", region_name=REGION)


@pytest.fixture
def state_machine(sfn) -> str:
    return sfn.create_state_machine(
        name="engram-ingest", definition=DEFINITION,
        roleArn="arn:aws:iam::123456789012:role/engram-ingest")["stateMachineArn"]


def test_start_names_the_execution_after_the_task_and_passes_the_pointer(sfn, state_machine):
    ref = TaskRef(tenant_id="t1", task_id="0f8e3a52-6c1d-4c1e-9a57-0d9f7a1b2c3d", user_id="u1")
    StepFunctionsWorkflow(sfn, state_machine).start(ref)

    (execution,) = sfn.list_executions(stateMachineArn=state_machine)["executions"]
    assert execution["name"] == ref.task_id
    described = sfn.describe_execution(executionArn=execution["executionArn"])
    assert TaskRef.model_validate_json(described["input"]) == ref


def test_starting_a_task_twice_is_one_execution(sfn, state_machine):
    workflow = StepFunctionsWorkflow(sfn, state_machine)
    ref = TaskRef(tenant_id="t1", task_id="task-1", user_id="u1")
    workflow.start(ref)
    sfn.stop_execution(executionArn=sfn.list_executions(
        stateMachineArn=state_machine)["executions"][0]["executionArn"])
    workflow.start(ref)  # ExecutionAlreadyExists: the first start went through

    assert len(sfn.list_executions(stateMachineArn=state_machine)["executions"]) == 1

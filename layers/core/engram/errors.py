"""Error classes shared by services, the API and (later) the Step Functions ASL.

API errors carry the HTTP status they map to; pipeline errors are classified as
retryable or permanent so a workflow can Retry the first and Catch the second; parse
errors fail one content item, with the reason its status shows.
"""


class EngramError(Exception):
    status_code = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(EngramError):
    status_code = 400


class Unauthorized(EngramError):
    status_code = 401


class Forbidden(EngramError):
    status_code = 403


class NotFound(EngramError):
    status_code = 404


class TaskErased(NotFound):
    """The task's row is gone: its user's data was erased (delete by user) while it
    waited or ran. A pipeline step that finds this removes what it wrote and stops."""


class Conflict(EngramError):
    status_code = 409


class PayloadTooLarge(EngramError):
    status_code = 413


class Unprocessable(EngramError):
    status_code = 422


class RetryableError(EngramError):
    """A transient failure (timeout, throttling): the step may be retried as is."""


class PermanentError(EngramError):
    """The input cannot be processed; retrying will not help."""


class ServiceUnavailable(RetryableError):
    """A service Engram needs is not answering yet (an OpenSearch Serverless collection
    scaled to zero takes 10-30 s to come back; chat's LLM timed out or is down): the API
    answers 503 with Retry-After instead of waiting past its budget; a pipeline step is
    retried like any RetryableError."""

    status_code = 503

    def __init__(self, message: str, retry_after_seconds: int = 10):
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class LlmUnavailable(RetryableError):
    """The LLM endpoint did not answer (down, timed out, 429/5xx after the client's own
    retries): the task fails with its raw input kept and can be retried."""


# --- content parsing: the item fails (its status says why), the rest of the task goes on ---

class ParseError(Exception):
    """The item cannot be parsed; str() is the reason shown to the user."""


class LimitExceeded(ParseError):
    """The item is over a limit; the message names the limit."""


class CapabilityUnavailable(ParseError):
    """This deployment has no engine for the item (no OCR, no speech model, no ffmpeg)."""


class ImageDescriptionFailed(Exception):
    """The describer gave no description; str() is the reason, free of secrets."""


# --- an outside service a request needs (chat's LLM) --------------------------------

class BadGateway(EngramError):
    """The upstream service (the LLM endpoint) refused or mangled the request."""

    status_code = 502


class WebhookRefused(Exception):
    """A webhook URL's resolved addresses are refused by the SSRF policy: never retried."""

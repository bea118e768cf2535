"""One region's AWS API as audit calls it: boto3, read-only by construction.

Every client refuses, before anything is sent, an operation whose name does not start with Describe,
List or Get. Calls are counted per operation and paginated everywhere (moto pages load balancers at
50, AWS at 400); a failed read is recorded against its operation, and the collection goes on.

Retries are ours, per request, with full jitter: throttling, 5xx and connection errors are retried
after a random wait that a ``Stop`` (Ctrl-C, the end of --timeout, or an endpoint that has answered
nothing for 90 s) cuts short. botocore's own backoff sleeps up to 20 s where nobody can interrupt it,
and its adaptive mode slows every request of a client after a few throttles.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError

from auditor.config import Aws
from auditor.errors import AuditError, CollectionStopped
from auditor.model.aws_shapes import tags_of
from auditor.model.snapshot import Redactor, SourceError

READ_ONLY = ("Describe", "List", "Get")
# Credentials for a read-only role are the one exception: AssumeRole changes nothing in the account.
CREDENTIALS = {("sts", "AssumeRole")}
DEFAULT_READ_TIMEOUT = 30.0  # seconds for one response; a slower one is retried
# An endpoint that answers nothing for this long is taken as stalled: the collection ends, naming it,
# within two minutes of the last answer (a read in progress may add up to its timeout).
STALLED_AFTER = 90.0
MAX_ATTEMPTS = 10  # throttling and 5xx: the service is there and asks us to wait
CONNECTION_ATTEMPTS = 4  # a reset or a timeout is retried, a dead endpoint is not waited on for long
HUNG_ATTEMPTS = 2  # without --timeout, one call waits at most two read timeouts for a response
BACKOFF_BASE, BACKOFF_CAP = 0.2, 5.0  # seconds: full jitter over min(cap, base * 2**attempt)
THROTTLING = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException",
}
TRANSIENT_STATUS = {500, 502, 503, 504}


class ReadOnlyViolation(AuditError):
    """The collector was asked to call an operation that could change the account."""


class CollectionError(AuditError):
    """AWS could not be read; the message names the operation (and the IAM action to grant)."""


class AccessDenied(CollectionError):
    pass


class Stop:
    """Ends a collection early, from any thread: Ctrl-C, the end of --timeout, or an endpoint that has
    answered nothing for ``STALLED_AFTER`` seconds. Every request checks it before it is sent and while
    it waits to retry, so no thread outlives it by more than one request's connect or read timeout. It
    also knows what is awaited (the requests in flight), for the lines a nightly job's log shows."""

    def __init__(self, timeout: float | None = None, stalled_after: float | None = None) -> None:
        self.timeout = timeout
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.stalled_after = STALLED_AFTER if stalled_after is None else stalled_after
        self.last_answer = time.monotonic()
        self.answers = 0
        self.stalled = False
        self.event = threading.Event()
        self.last_error = ""  # what the last failed attempt said, for the message at the deadline
        self.in_flight: dict[int, tuple[str, str, float]] = {}  # per thread: operation, endpoint, since

    def remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def answered(self) -> None:
        self.last_answer = time.monotonic()
        self.answers += 1

    def check(self, endpoint: str | None = None) -> None:
        """Raise CollectionStopped once stopped; ``endpoint`` names where (default: the one awaited)."""
        now = time.monotonic()
        if self.deadline is not None and now >= self.deadline:
            self.event.set()
        oldest = self.awaited()
        # Stalled: a request is in flight and nothing has answered since it or the last answer was sent.
        if oldest is not None and now - max(self.last_answer, oldest[2]) >= self.stalled_after:
            self.stalled = True
            self.event.set()
        if self.event.is_set():
            raise CollectionStopped(self.message(endpoint or (oldest[1] if oldest else "the AWS endpoint")))

    def message(self, endpoint: str) -> str:
        last = f" (last: {self.last_error})" if self.last_error else ""
        if self.stalled:
            awaited = self.awaited()
            what = f" {awaited[0]}" if awaited else ""
            return f"AWS at {endpoint} has not answered{what} in {self.stalled_after:g} s: is it up and reachable?"
        if self.timeout is not None and self.remaining() == 0:
            return f"collection from AWS at {endpoint} did not finish within --timeout {self.timeout:g} s{last}"
        return f"collection from AWS at {endpoint} was stopped{last}"

    def wait(self, seconds: float, endpoint: str) -> None:
        """Sleep before a retry; wake at once when stopped."""
        remaining = self.remaining()
        self.event.wait(seconds if remaining is None else min(seconds, remaining))
        self.check(endpoint)

    def sending(self, operation: str, endpoint: str) -> None:
        self.in_flight[threading.get_ident()] = (operation, endpoint, time.monotonic())

    def done(self) -> None:
        self.in_flight.pop(threading.get_ident(), None)

    def awaited(self) -> tuple[str, str, float] | None:
        """The request waited on longest: operation, endpoint, since when."""
        return min(list(self.in_flight.values()), key=lambda entry: entry[2], default=None)

    def waiting(self) -> str | None:
        """What is awaited, as a line for the log; None when no request is in flight."""
        requests = list(self.in_flight.values())
        oldest = self.awaited()
        if oldest is None:
            return None
        more = f" and {len(requests) - 1} more requests" if len(requests) > 1 else ""
        last = f"last answer {time.monotonic() - self.last_answer:.0f} s ago" if self.answers else "no answer yet"
        return f"waiting for AWS at {oldest[1]}: {oldest[0]}{more}, {time.monotonic() - oldest[2]:.0f} s ({last})"


def _retryable(response: Any, caught: Exception | None) -> bool:
    if caught is not None:
        return isinstance(caught, BotoCoreError) and not isinstance(caught, NoCredentialsError)
    if not response:
        return False
    http, parsed = response
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return code in THROTTLING or getattr(http, "status_code", 0) in TRANSIENT_STATUS


class Api:
    """One region's AWS API as audit calls it: clients that refuse any operation but Describe*, List*
    and Get* before anything is sent, count every call, retry by our rules (throttling, 5xx, resets, a
    response that never came) with waits a ``Stop`` cuts short; and calls that record a failed read (the
    collection becomes partial) instead of raising."""

    def __init__(self, aws: Aws, region: str, concurrency: int, redactor: Redactor, role_arn: str | None,
                 read_timeout: float, stop: Stop) -> None:
        self.aws = aws
        self.region = region
        self.concurrency = concurrency
        self.redactor = redactor
        self.read_timeout = read_timeout
        self.stop = stop
        self.calls: Counter[str] = Counter()
        self.errors: list[SourceError] = []
        self.read_any = False  # whether any read succeeded
        self._lock = threading.Lock()
        self._session = self._make_session(role_arn or aws.role_arn)
        self._clients: dict[str, Any] = {}

    # --- clients --------------------------------------------------------------------------------

    def _make_session(self, role_arn: str | None) -> boto3.Session:
        """The profile's credentials, or a read-only role's (session name `audit`); a role that cannot
        be assumed raises the ClientError, for the caller to record against its slice."""
        base = boto3.Session(profile_name=self.aws.profile, region_name=self.region)
        if not role_arn:
            return base
        sts = self._guarded(base.client("sts", **self._client_args()))
        creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="audit")["Credentials"]
        return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                             aws_session_token=creds["SessionToken"], region_name=self.region)

    def _client_args(self) -> dict[str, Any]:
        # The retry decision is ours (see the module docstring): botocore's own handler may never retry.
        config = BotoConfig(region_name=self.region, retries={"mode": "standard", "total_max_attempts": 1},
                            max_pool_connections=self.concurrency, connect_timeout=min(5.0, self.read_timeout),
                            read_timeout=self.read_timeout)
        args: dict[str, Any] = {"config": config}
        if self.aws.endpoint_url:  # else boto3 honours AWS_ENDPOINT_URL itself
            args["endpoint_url"] = self.aws.endpoint_url
        return args

    def _guarded(self, client: Any) -> Any:
        service = client.meta.service_model.service_name

        endpoint = client.meta.endpoint_url

        def guard(model: Any, **_: Any) -> None:
            if not model.name.startswith(READ_ONLY) and (service, model.name) not in CREDENTIALS:
                raise ReadOnlyViolation(f"refusing {service}:{model.name}: audit only reads (Describe*, List*, Get*)")
            with self._lock:
                self.calls[f"{service}.{model.name}"] += 1
            self.stop.sending(f"{service}:{model.name}", endpoint)

        def before_send(**_: Any) -> None:
            self.stop.check(endpoint)

        def needs_retry(response: Any = None, attempts: int = 1, caught_exception: Exception | None = None,
                        **_: Any) -> float | None:
            if response is not None:
                self.stop.answered()
            if caught_exception is not None and not isinstance(caught_exception, CollectionStopped):
                self.stop.last_error = str(caught_exception)
            # A response that never came is asked for once more, unless --timeout's deadline bounds the wait.
            hung = isinstance(caught_exception, ReadTimeoutError) and self.stop.deadline is None
            limit = MAX_ATTEMPTS if caught_exception is None else HUNG_ATTEMPTS if hung else CONNECTION_ATTEMPTS
            if attempts >= limit or not _retryable(response, caught_exception):
                self.stop.check(endpoint)
                return None
            self.stop.wait(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempts)), endpoint)
            return 0  # waited already, interruptibly: botocore retries at once

        client.meta.events.register("before-call", guard)  # every operation of this client
        client.meta.events.register("after-call", lambda **_: self.stop.done())
        client.meta.events.register("after-call-error", lambda **_: self.stop.done())
        client.meta.events.register("before-send", before_send)
        client.meta.events.register_first("needs-retry", needs_retry)  # ahead of botocore's own
        return client

    @property
    def endpoint(self) -> str:
        return self.aws.endpoint_url or self.client("elbv2").meta.endpoint_url

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._guarded(self._session.client(service, **self._client_args()))
            return self._clients[service]

    # --- calls ----------------------------------------------------------------------------------

    def _record(self, service: str, operation: str, exc: Exception) -> None:
        if isinstance(exc, ClientError):
            code = exc.response.get("Error", {}).get("Code", "")
            message = exc.response.get("Error", {}).get("Message", "")
        else:
            code, message = type(exc).__name__, str(exc)
        error = SourceError(source="aws", operation=f"{service}:{operation}", code=code,
                            message=self.redactor.text(message))
        with self._lock:
            self.errors.append(error)

    @contextmanager
    def _recording(self, service: str, operation: str) -> Iterator[None]:
        """A failed read is recorded (the collection becomes partial); missing credentials end it."""
        try:
            yield
        except NoCredentialsError as exc:
            raise CollectionError(f"no AWS credentials for region {self.region}: {exc}") from None
        except (ClientError, BotoCoreError) as exc:
            self._record(service, operation, exc)
        else:
            self.read_any = True

    def call(self, service: str, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """One call; a failure gives None."""
        method = getattr(self.client(service), _snake(operation))
        with self._recording(service, operation):
            return method(**kwargs)
        return None

    def paginate(self, service: str, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Every page's items; a failure keeps the pages read before it."""
        paginator = self.client(service).get_paginator(_snake(operation))
        items: list[dict[str, Any]] = []
        with self._recording(service, operation):
            for page in paginator.paginate(**kwargs):
                items.extend(page.get(key, []))
        return items

    def elb_tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        """The tags of up to 20 load balancers or target groups (one DescribeTags), by ARN."""
        response = self.call("elbv2", "DescribeTags", ResourceArns=arns) or {}
        return {d["ResourceArn"]: tags_of(d.get("Tags")) for d in response.get("TagDescriptions", [])}


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")

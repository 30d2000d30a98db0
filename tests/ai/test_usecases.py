"""AiUseCases (and one job's run) against in-memory ports: who may start, list, read, cancel
and watch jobs, the limits, and the result cache (no database, no Redis, no peers)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from services.ai.config import AiConfig
from services.ai.domain import (
    FileContent,
    Job,
    JobKind,
    JobStatus,
    ReviewFileRef,
    ReviewInfo,
    SourceFile,
    make_finding,
)
from services.ai.jobs import JobControl, JobExecutor
from services.ai.usecases import LIMIT_RETRY_AFTER, AiUseCases
from services.common.config import Env
from services.common.errors import (
    Conflict,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.common.identity import Caller
from services.common.membership import Membership
from tests.ai.fakes import (
    FixedSources,
    MemoryJobs,
    MemoryPeers,
    QuietSignals,
    RecordingEvents,
    RecordingQueue,
    ScriptedProvider,
)

SESSION = str(uuid.uuid4())
REVIEW = str(uuid.uuid4())
OWNER, EDITOR, VIEWER, STRANGER = (str(uuid.uuid4()) for _ in range(4))


def user(user_id: str) -> Caller:
    return Caller(user_id=user_id, internal=False, token="t")


@dataclass
class World:
    jobs: MemoryJobs = field(default_factory=MemoryJobs)
    peers: MemoryPeers = field(default_factory=MemoryPeers)
    queue: RecordingQueue = field(default_factory=RecordingQueue)
    events: RecordingEvents = field(default_factory=RecordingEvents)
    provider: ScriptedProvider = field(default_factory=ScriptedProvider)
    config: AiConfig = field(default_factory=lambda: AiConfig.from_env(Env({})))

    @property
    def usecases(self) -> AiUseCases:
        return AiUseCases(self.jobs, self.peers, {"builtin": self.provider}, self.queue,
                          self.events, QuietSignals(), self.config)

    async def review_job(self, who: str = EDITOR, paths: tuple[str, ...] = ()) -> Job:
        return await self.usecases.create_review_job(user(who), REVIEW, paths, "")


@pytest.fixture
def world() -> World:
    w = World()
    w.peers.members.update({(SESSION, OWNER): Membership("owner", True),
                            (SESSION, EDITOR): Membership("editor", True),
                            (SESSION, VIEWER): Membership("viewer", True)})
    w.peers.reviews[REVIEW] = ReviewInfo(REVIEW, SESSION, "abc123", (
        ReviewFileRef("app.py", "modified"), ReviewFileRef("gone.py", "removed")))
    return w


async def test_a_member_starts_a_review_job_and_a_worker_is_woken(world: World) -> None:
    job = await world.review_job(paths=("app.py", "app.py"))
    assert (job.status, job.kind, job.session_id, job.review_id) == (
        JobStatus.QUEUED, JobKind.REVIEW, SESSION, REVIEW)
    assert (job.provider, job.model, job.requested_by, job.paths) == (
        "builtin", "scripted-1", EDITOR, ("app.py",))
    assert world.queue.wakes == 1
    assert list(world.jobs.jobs) == [job.id]
    document = await world.usecases.create_document_job(user(OWNER), SESSION, "builtin")
    assert (document.kind, document.review_id) == (JobKind.DOCUMENT, None)


async def test_who_may_start_a_job(world: World) -> None:
    with pytest.raises(PermissionDenied):
        await world.review_job(VIEWER)
    with pytest.raises(NotFound):
        await world.review_job(STRANGER)
    with pytest.raises(NotFound):
        await world.usecases.create_document_job(user(STRANGER), SESSION, "")
    with pytest.raises(NotFound):
        await world.usecases.create_document_job(user(EDITOR), "not-a-uuid", "")
    with pytest.raises(Unauthenticated):
        await world.usecases.create_document_job(Caller(None, internal=True), SESSION, "")
    world.peers.members[SESSION, EDITOR] = Membership("editor", active=False)
    with pytest.raises(FailedPrecondition, match="ended"):
        await world.review_job(EDITOR)
    assert world.jobs.jobs == {}
    assert world.queue.wakes == 0


async def test_a_job_names_changed_files_and_a_configured_provider(world: World) -> None:
    with pytest.raises(InvalidArgument) as info:
        await world.review_job(paths=("app.py", "gone.py", "nope.py"))
    assert [v.field for v in info.value.violations] == ["paths.1", "paths.2"]
    with pytest.raises(InvalidArgument, match="unknown provider"):
        await world.usecases.create_review_job(user(EDITOR), REVIEW, (), "magic")
    with pytest.raises(InvalidArgument, match="not configured"):
        await world.usecases.create_review_job(user(EDITOR), REVIEW, (), "openai")
    assert world.jobs.jobs == {}


async def test_the_per_user_limit_counts_unfinished_jobs(world: World) -> None:
    jobs = [await world.review_job() for _ in range(world.config.max_jobs_per_user)]
    with pytest.raises(ResourceExhausted) as info:
        await world.review_job()
    assert info.value.retry_after == LIMIT_RETRY_AFTER
    world.jobs.set_status(jobs[0].id, JobStatus.DONE)
    await world.review_job()


async def test_members_list_jobs_newest_first_in_pages(world: World) -> None:
    made = [await world.review_job(who) for who in (EDITOR, OWNER, EDITOR)]
    document = await world.usecases.create_document_job(user(OWNER), SESSION, "")
    listed, cursor = await world.usecases.list_jobs(
        user(VIEWER), review_id=REVIEW, session_id=None, kind=None, limit=2, cursor="")
    assert [j.id for j in listed] == [made[2].id, made[1].id]
    rest, last = await world.usecases.list_jobs(
        user(VIEWER), review_id=REVIEW, session_id=None, kind=None, limit=2, cursor=cursor)
    assert ([j.id for j in rest], last) == ([made[0].id], "")
    documents, _ = await world.usecases.list_jobs(
        user(EDITOR), review_id=None, session_id=SESSION, kind=JobKind.DOCUMENT, limit=0,
        cursor="")
    assert [j.id for j in documents] == [document.id]
    for scope in ({"review_id": REVIEW, "session_id": None},
                  {"review_id": None, "session_id": SESSION}):
        with pytest.raises(NotFound):
            await world.usecases.list_jobs(user(STRANGER), kind=None, limit=0, cursor="",
                                           **scope)
    with pytest.raises(InvalidArgument):
        await world.usecases.list_jobs(user(EDITOR), review_id=REVIEW, session_id=None,
                                       kind=None, limit=101, cursor="")


async def test_reading_a_job_needs_membership_or_the_service_credential(world: World) -> None:
    job = await world.review_job()
    assert (await world.usecases.get_job(user(VIEWER), job.id)).id == job.id
    assert (await world.usecases.get_job(Caller(None, internal=True), job.id)).id == job.id
    for caller, job_id in ((user(STRANGER), job.id), (Caller(None, internal=False), job.id),
                           (user(EDITOR), str(uuid.uuid4())), (user(EDITOR), "nope")):
        with pytest.raises(NotFound):
            await world.usecases.get_job(caller, job_id)


async def test_cancelling_a_queued_job_ends_it_and_tells_the_room(world: World) -> None:
    job = await world.review_job(EDITOR)
    with pytest.raises(PermissionDenied):
        await world.usecases.cancel_job(user(VIEWER), job.id)
    cancelled = await world.usecases.cancel_job(user(OWNER), job.id)
    assert cancelled.status is JobStatus.CANCELLED
    assert world.events.ends == [(job.id, JobStatus.CANCELLED, 0)]
    # Cancelling again answers the cancelled job; a job that ended otherwise is a conflict.
    assert (await world.usecases.cancel_job(user(EDITOR), job.id)).status is JobStatus.CANCELLED
    done = await world.review_job(EDITOR)
    world.jobs.set_status(done.id, JobStatus.DONE)
    with pytest.raises(Conflict):
        await world.usecases.cancel_job(user(EDITOR), done.id)


async def test_cancelling_a_running_job_reaches_its_runner(world: World) -> None:
    job = await world.review_job(EDITOR)
    world.jobs.set_status(job.id, JobStatus.RUNNING)

    class Runner:
        """Where the job runs: it stops the job when asked."""

        async def request_cancel(self, job_id: str) -> None:
            world.queue.cancels.append(job_id)
            world.jobs.set_status(job_id, JobStatus.CANCELLED)

        def wake(self) -> None:
            world.queue.wakes += 1

    usecases = AiUseCases(world.jobs, world.peers, {"builtin": world.provider}, Runner(),
                          world.events, QuietSignals(), world.config)
    stopped = await usecases.cancel_job(user(EDITOR), job.id)
    assert stopped.status is JobStatus.CANCELLED
    assert world.jobs.cancel_requested == {job.id}
    assert world.queue.cancels == [job.id]


async def test_watching_a_finished_job_gives_its_findings_then_the_job(world: World) -> None:
    job = await world.review_job()
    found = [make_finding("app.py", n, n, "warning", "style", f"m{n}") for n in (1, 2)]
    world.jobs.findings[job.id] = found
    world.jobs.set_status(job.id, JobStatus.DONE)
    items = [item async for item in world.usecases.watch(user(VIEWER), job.id)]
    assert items[:2] == [(0, found[0]), (1, found[1])]
    last = items[2]
    assert isinstance(last, Job)
    assert last.status is JobStatus.DONE
    with pytest.raises(NotFound):
        _ = [item async for item in world.usecases.watch(user(STRANGER), job.id)]


async def test_a_file_reviewed_before_comes_from_the_cache(world: World) -> None:
    source = SourceFile("app.py", "import os\n")
    finding = make_finding("app.py", 1, 1, "warning", "maintainability", "unused import",
                           source="ruff")
    world.provider.answers["app.py"] = [finding]
    world.peers.files[REVIEW, "app.py"] = FileContent("app.py", "modified", source.content, None)
    executor = JobExecutor(world.jobs, {"builtin": world.provider}, FixedSources([source]),
                           world.events, world.config, "runner-1")

    async def run() -> Job:
        job = await world.review_job()
        world.jobs.set_status(job.id, JobStatus.RUNNING)
        await executor.run(world.jobs.jobs[job.id], JobControl(), 60.0)
        ended = await world.jobs.get(job.id)
        assert ended is not None
        return ended

    first, second = await run(), await run()
    assert world.provider.seen == [["app.py"]]
    for job, reviewed, reused in ((first, 1, 0), (second, 0, 1)):
        assert job.status is JobStatus.DONE
        assert job.findings == [finding]
        assert (job.files_reviewed, job.files_reused) == (reviewed, reused)
    assert "0 files reviewed, 1 unchanged reused" in second.summary
    assert [(job_id, n) for job_id, n, _ in world.events.findings] == [(first.id, 0),
                                                                       (second.id, 0)]
    assert world.events.ends == [(first.id, JobStatus.DONE, 1), (second.id, JobStatus.DONE, 1)]



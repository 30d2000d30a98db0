"""The CPU-bound halves of the built-in analyzer, run in worker processes: detect-secrets and lizard.

Both are pure Python and hold the GIL for hundreds of milliseconds on a large
file; in worker processes they run in parallel with each other and never stall
the service's event loop. detect-secrets also keeps its configuration in a
process-wide singleton, which a process of its own makes safe to configure once.
Results are plain tuples so they cross the process boundary cheaply.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time

# (line number, secret type) pairs.
SecretHits = list[tuple[int, str]]
# (name, first line, last line, cyclomatic complexity, lines of code, parameters).
FunctionStats = list[tuple[str, int, int, int, int, int]]


def init_worker(parent_pid: int) -> None:
    """Die with the service, then configure detect-secrets with every plugin it ships and its
    default filters."""
    _exit_with_parent(parent_pid)
    from detect_secrets.core.plugins.util import (  # noqa: PLC0415 - only in worker processes
        get_mapping_from_secret_type_to_class,
    )
    from detect_secrets.settings import (  # noqa: PLC0415 - only in worker processes
        cache_bust,
        configure_settings_from_baseline,
    )

    classes: list[type] = list(get_mapping_from_secret_type_to_class().values())
    plugins = [{"name": cls.__name__} for cls in classes]
    cache_bust()
    configure_settings_from_baseline({"plugins_used": plugins})
    import lizard  # noqa: F401, PLC0415 - warm the import so the first review is not slower


def _exit_with_parent(parent_pid: int) -> None:
    """Exit as soon as the process that started this worker is gone, however it ended.

    A pool worker waits on its task queue, whose writing end every worker holds too, so
    a service killed with SIGKILL (no shutdown) would leave its workers waiting forever.
    multiprocessing's spawn hands each child a pipe from its parent that reaches EOF when
    the parent dies: a daemon thread waits for that, without polling.
    """
    parent = multiprocessing.parent_process()
    if os.getppid() != parent_pid:
        os._exit(0)  # the parent died before this worker got here

    def watch() -> None:
        if parent is not None:
            parent.join()
        else:  # not started by spawn: no pipe to wait on, ask the kernel now and then
            while os.getppid() == parent_pid:
                time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def ready() -> bool:
    """A no-op task: submitting one per worker starts the processes ahead of the first review."""
    return True


def scan_secrets(path: str, content: str, first_line: int = 1) -> SecretHits:
    """Lines of `content` that hold something detect-secrets takes for a credential.

    `content` may be a slice of a larger file starting at `first_line`; the line
    numbers returned are the file's.
    """
    from detect_secrets.core.secrets_collection import (  # noqa: PLC0415 - only in worker processes
        SecretsCollection,
    )

    # Only the base name is kept: plugins look at the extension, and a path from a
    # pull request must never choose where we write.
    name = os.path.basename(path.replace("\\", "/")) or "file"
    with tempfile.TemporaryDirectory(prefix="tandem-ai-") as root:
        with open(os.path.join(root, name), "w", encoding="utf-8", errors="surrogateescape",
                  newline="") as handle:
            handle.write(content)
        collection = SecretsCollection(root=root)
        collection.scan_file(name)
        shift = first_line - 1
        return sorted({(secret.line_number + shift, str(secret.type)) for _, secret in collection})


def measure_functions(path: str, content: str) -> FunctionStats:
    """Every function lizard finds in `content`, for the languages lizard knows (else none)."""
    import lizard  # noqa: PLC0415 - only in worker processes

    if lizard.get_reader_for(path) is None:
        return []
    info = lizard.analyze_file.analyze_source_code(path, content)
    return [(str(f.name), int(f.start_line), int(f.end_line), int(f.cyclomatic_complexity),
             int(f.nloc), int(f.parameter_count)) for f in info.function_list]

"""Picking up where an earlier run stopped: the output (and --errors file) read for the custom_ids
already there, the input's fingerprint checked against the one recorded beside the output, and
--retry-failed's failures taken out of the files so that they are sent again.

The rules:
- every custom_id with a success in the output is skipped; so is every failure, unless
  --retry-failed (then the failures of this input are removed from the files first, and sent);
- an output that has results but no record of its input, or whose input changed (another
  SHA-256, another format), is refused unless --force (then the record is rewritten for this
  input, and the custom_ids already there are still skipped);
- the --errors file must be the one the output was started with (or --force).
"""

from __future__ import annotations

from dataclasses import dataclass

from acs_cli.batch.ids import IdSet
from acs_cli.batch.results import Existing, compact, read_existing
from acs_cli.batch.state import Fingerprint, StateFile
from acs_cli.errors import UsageError


@dataclass
class Resumed:
    existing: Existing
    retrying: int = 0  # failures taken out of the files to be sent again

    def skip(self, custom_id: str) -> str | None:
        """"done" or "failed" for a custom_id already in the files, else None (send it)."""
        if custom_id in self.existing.done:
            return "done"
        if custom_id in self.existing.failed:
            return "failed"
        return None


def _read(output: str, errors: str | None, ids: IdSet, cut: bool = True) -> Existing:
    existing = Existing(ours=ids)
    for path in (output, errors):
        if path:
            read_existing(path, existing, cut=cut)
    return existing


def peek(output: str, errors: str | None, ids: IdSet) -> Existing:
    """What an output holds, without changing anything (--dry-run): nothing is cut or locked."""
    return _read(output, errors, ids, cut=False)


def resume(state: StateFile, fingerprint: Fingerprint, output: str, errors: str | None, *, force: bool, retry_failed: bool, ids: IdSet) -> Resumed:
    """Read what is done, check it belongs to this input, record this input; the state file is locked."""
    existing = _read(output, errors, ids)
    recorded = state.read()
    if existing.results and not force:
        _check(recorded, fingerprint, output)
    state.write(fingerprint)
    resumed = Resumed(existing)
    if retry_failed and existing.failures:

        def ours(custom_id: str) -> bool:
            return custom_id in ids

        for path in (output, errors):
            if path:
                resumed.retrying += compact(path, ours)
        resumed.existing = _read(output, errors, ids)
    return resumed


def _check(recorded: Fingerprint | None, fingerprint: Fingerprint, output: str) -> None:
    if recorded is None:
        raise UsageError(
            f"{output} already has results, but no record of the input they came from ({output}.acs-batch is missing or unreadable)",
            "give a new -o, or --force to resume it with this input (custom_ids already there are skipped)",
        )
    why = recorded.differs(fingerprint)
    if why is not None:
        raise UsageError(f"{output}: {why}", "give a new -o for the new input, or --force to resume it anyway (custom_ids already there are skipped)")
    if (recorded.errors or None) != (fingerprint.errors or None):
        before = recorded.errors or "none"
        raise UsageError(
            f"{output} was started with --errors {before}, this run gives {fingerprint.errors or 'none'}",
            "give the same --errors as before (or --force)",
        )

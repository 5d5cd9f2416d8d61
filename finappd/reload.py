"""What a SIGHUP reload must do: the difference between the running and the new settings.

:func:`diff_settings` is pure (two validated :class:`~finappd.config.Settings` in, a
:class:`SettingsDiff` out); the daemon (:mod:`finappd.scheduler`) applies it:

- a flow only in the new settings is **added** (scheduled; an interval flow runs at once);
- a flow only in the old one is **removed** (unscheduled; a run in flight finishes);
- a flow whose settings differ is **changed**: its next run reads the new ones; when
  what decides its fire times (``every``, ``cron``, ``timezone``) differs, it is also
  **rescheduled**;
- a provider added, removed or with any setting changed is **rebuilt**: a fresh instance
  (fresh limits) once no run uses the old one;
- ``store`` cannot change under a running daemon: it is reported as needing a restart;
- ``logging`` is reconfigured at once; ``grace_period`` applies to the next shutdown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finappd.config import FlowSettings, Settings

__all__ = ["SettingsDiff", "diff_settings"]


@dataclass(frozen=True)
class SettingsDiff:
    """The flows and providers a reload touches, each list in config order."""

    flows_added: tuple[str, ...] = ()
    flows_removed: tuple[str, ...] = ()
    flows_changed: tuple[str, ...] = ()
    flows_rescheduled: tuple[str, ...] = ()  # a subset of flows_changed
    flows_unchanged: tuple[str, ...] = ()
    providers_rebuilt: tuple[str, ...] = ()  # sorted by name
    restart_needed: tuple[str, ...] = ()
    logging_changed: bool = False

    def as_log(self) -> dict[str, Any]:
        """The fields of the ``config.reloaded`` log line."""
        return {
            "flows_added": list(self.flows_added),
            "flows_removed": list(self.flows_removed),
            "flows_changed": list(self.flows_changed),
            "flows_rescheduled": list(self.flows_rescheduled),
            "providers_changed": list(self.providers_rebuilt),
            "restart_needed": list(self.restart_needed),
        }


def schedule_key(flow: FlowSettings) -> tuple[object, ...]:
    """What decides when a flow fires; a change means the job is rescheduled."""
    return (flow.every, flow.cron, flow.timezone)


def diff_settings(old: Settings, new: Settings) -> SettingsDiff:
    """What switching a running daemon from ``old`` to ``new`` (both valid) must do."""
    old_flows = {f.name: f for f in old.flows}
    new_flows = {f.name: f for f in new.flows}
    common = [n for n in new_flows if n in old_flows]
    changed = tuple(n for n in common if new_flows[n] != old_flows[n])
    return SettingsDiff(
        flows_added=tuple(n for n in new_flows if n not in old_flows),
        flows_removed=tuple(n for n in old_flows if n not in new_flows),
        flows_changed=changed,
        flows_rescheduled=tuple(
            n for n in changed if schedule_key(new_flows[n]) != schedule_key(old_flows[n])
        ),
        flows_unchanged=tuple(n for n in common if n not in changed),
        providers_rebuilt=tuple(
            sorted(
                n
                for n in {*old.providers, *new.providers}
                if old.providers.get(n) != new.providers.get(n)
            )
        ),
        restart_needed=("store",) if new.store != old.store else (),
        logging_changed=new.logging != old.logging,
    )

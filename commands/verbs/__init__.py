"""Every verb, one module per concern; each verb is one `@verb`-decorated function.

`MODULES` is the order of `help` (groups appear in the order their first verb
does): what people run every day first, approvals and access last. Adding a verb
to a concern is one decorated function in its module; adding a concern is a module
here and its line in `MODULES`.
"""

from __future__ import annotations

from commands.registry import Registry
from commands.verbs import (
    access,
    approvals,
    backups,
    databases,
    general,
    listings,
    queries,
    schedule_changes,
    schedules,
    snapshots,
    switch,
    tx,
    typedb,
    typedb_users,
    watch,
)

MODULES = (
    general,  # plan, help
    listings,  # envs, list, versions, plans, regions
    databases,  # show, create, pause, resume, restart, clone, terminate, import, ops
    snapshots,  # snapshots, snapshot, restore
    switch,  # switch, switch-back, dr
    backups,  # GrapheneDB v1: backups, backup, restore-backup, empty, backup-schedule, ...
    watch,  # watch, unwatch, watches
    typedb,  # health, dbs, create-db, delete-db, schema
    queries,  # query
    tx,  # tx open|query|commit|rollback|close
    typedb_users,  # users, user
    schedules,  # schedule, schedule-activate
    schedule_changes,  # schedules, unschedule, schedule-skip, schedule-extend
    approvals,  # approve, deny, pending (mostly the buttons of an approval card)
    access,  # access, grant, revoke, protect, approvers, incident-channel (bot admins)
)


def build_registry() -> Registry:
    """The registry of every verb, in `MODULES` order."""
    return Registry.collect(MODULES)

"""What each role may do. Every endpoint and page names the permission it needs."""

from __future__ import annotations

from enum import StrEnum

from patron.models.enums import Role


class Permission(StrEnum):
    read = "read"  # customers, products, orders, interactions, dashboards
    write_customers = "write_customers"
    delete_customers = "delete_customers"
    write_interactions = "write_interactions"
    write_orders = "write_orders"
    write_catalog = "write_catalog"  # products, stores
    manage_users = "manage_users"
    import_data = "import_data"  # bulk files, batch API, import runs
    merge_customers = "merge_customers"  # merge duplicates and undo merges
    run_analysis = "run_analysis"  # `patron analyze` runs: scores, CLV, validation
    manage_segments = "manage_segments"  # create, change, delete segments; lists, clusters, snapshots
    manage_loyalty = "manage_loyalty"  # programme rules, rewards, adjustments and reversals
    operate_loyalty = "operate_loyalty"  # enrol members, give bonuses, redeem rewards, consume vouchers
    manage_webhooks = "manage_webhooks"  # outgoing webhook subscriptions, their delivery log, send again (admin)


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.admin: frozenset(Permission),
    Role.marketer: frozenset(
        {
            Permission.read,
            Permission.write_customers,
            Permission.write_interactions,
            Permission.write_orders,
            Permission.write_catalog,
            Permission.import_data,
            Permission.merge_customers,
            Permission.manage_segments,
            Permission.manage_loyalty,
            Permission.operate_loyalty,
        }
    ),
    Role.agent: frozenset(
        {
            Permission.read,
            Permission.write_customers,
            Permission.write_interactions,
            Permission.merge_customers,
            Permission.operate_loyalty,
        }
    ),
    Role.analyst: frozenset({Permission.read, Permission.run_analysis, Permission.manage_segments}),
    Role.viewer: frozenset({Permission.read}),
}


def allows(role: Role, permission: Permission) -> bool:
    return permission in ROLE_PERMISSIONS[role]


def lower_role(a: Role, b: Role) -> Role:
    """The role with the most rights that both `a` and `b` have: a token's role in force is
    the lower of its own and its user's current one. Roles are not a ladder (an agent may
    write customers, an analyst run analyses), so for two such roles it is the viewer."""
    both = ROLE_PERMISSIONS[a] & ROLE_PERMISSIONS[b]
    return max((r for r in Role if ROLE_PERMISSIONS[r] <= both), key=lambda r: len(ROLE_PERMISSIONS[r]))

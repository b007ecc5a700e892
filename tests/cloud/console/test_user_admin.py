# mypy: allow-untyped-defs
"""The user-administration rule (console.user_admin): an admin acts only on users whose grants
all lie in the areas they administer, grants only inside them, never on themselves, and no
change takes away the last enabled admin of `/`. On SQLite and PostgreSQL (`store_at`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cloud_ingest.console.accounts import AccountStore
from cloud_ingest.console.passwords import check_password_policy
from cloud_ingest.console.roles import Role, User
from cloud_ingest.console.user_admin import UserAdmin, UserAdminRefused, generate_password
from cloud_ingest.errors import PasswordRejected
from tests.support.console import FAST_HASHER, PASSWORD, FakeClock, console_db_with_areas

XISHAN, ERYUAN, HAIDONG = "dali/eryuan/xishan", "dali/eryuan", "dali/er/haidong"


@pytest.fixture
def store(tmp_path, store_at) -> Iterator[AccountStore]:
    s = AccountStore(console_db_with_areas(tmp_path, store_at("console")), FakeClock(), FAST_HASHER)
    s.add_user("root", PASSWORD, Role.ADMIN, "/")
    s.add_user("town-admin", PASSWORD, Role.ADMIN, XISHAN)
    s.add_user("town-viewer", PASSWORD, Role.VIEWER, XISHAN)
    s.add_user("county-mgr", PASSWORD, Role.MANAGER, ERYUAN)
    s.add_user("both", PASSWORD, Role.VIEWER, XISHAN)
    s.grant("both", Role.VIEWER, HAIDONG)
    yield s
    s.close()


def as_user(store: AccountStore, name: str) -> UserAdmin:
    actor = store.get_user(name)
    assert actor is not None
    return UserAdmin(store, actor)


def refused(fn, *args) -> int:
    with pytest.raises(UserAdminRefused) as exc:
        fn(*args)
    return exc.value.status


def test_a_township_admin_sees_only_users_wholly_inside_the_township(store) -> None:
    town = as_user(store, "town-admin")
    assert [u.username for u in town.users()] == ["town-admin", "town-viewer"]
    root = as_user(store, "root")
    assert {u.username for u in root.users()} >= {"both", "county-mgr", "root"}
    # A user with one grant elsewhere is not the township's: 404, like no such user.
    assert refused(town.target, "both") == 404
    assert refused(town.target, "county-mgr") == 404
    assert refused(town.target, "nobody") == 404


def test_a_township_admin_cannot_grant_on_the_county_or_elsewhere(store) -> None:
    town = as_user(store, "town-admin")
    # The county contains the township: visible to nobody here but not administered → 404;
    # with a viewer grant on the county the admin could see it → 403.
    assert refused(town.grant, "town-viewer", Role.VIEWER, ERYUAN) == 404
    assert refused(town.grant, "town-viewer", Role.VIEWER, HAIDONG) == 404
    assert refused(town.create, "new.one", Role.VIEWER, ERYUAN, None) == 404
    store.grant("town-admin", Role.VIEWER, ERYUAN)
    town = as_user(store, "town-admin")
    assert refused(town.grant, "town-viewer", Role.VIEWER, ERYUAN) == 403
    assert [g.area for g in store.get_user("town-viewer").grants] == [XISHAN]
    # Inside the township: allowed, down to the courtyard.
    town.grant("town-viewer", Role.MANAGER, XISHAN + "/xs-01")
    assert {g.area for g in store.get_user("town-viewer").grants} == {XISHAN, XISHAN + "/xs-01"}
    town.revoke("town-viewer", XISHAN + "/xs-01")
    assert [g.area for g in store.get_user("town-viewer").grants] == [XISHAN]


def test_create_shows_a_generated_password_that_logs_in(store) -> None:
    town = as_user(store, "town-admin")
    user, password = town.create("Li.Wei", Role.MANAGER, XISHAN, None)
    assert user.username == "li.wei" and user.grants[0].role == Role.MANAGER
    check_password_policy(password, "li.wei")
    assert store.authenticate("li.wei", password, "10.0.0.1").username == "li.wei"
    with pytest.raises(PasswordRejected):
        town.create("wang.fang", Role.VIEWER, XISHAN, "password2024")
    assert store.get_user("wang.fang") is None


def test_no_self_change_and_one_root_admin_remains(store) -> None:
    root = as_user(store, "root")
    assert refused(root.set_disabled, "root", True) == 403
    assert refused(root.revoke, "root", "/") == 403
    assert refused(root.grant, "root", Role.VIEWER, "/") == 403
    assert refused(root.reset_password, "root", None) == 403
    # A second root admin can be disabled by the first; the first then cannot be by anyone.
    store.add_user("root2", PASSWORD, Role.ADMIN, "/")
    root.set_disabled("root2", True)
    assert store.get_user("root2").disabled
    root.set_disabled("root2", False)
    root2 = as_user(store, "root2")
    root2.grant("root", Role.VIEWER, "/")  # demoting the other one is fine: root2 remains
    assert store.get_user("root").top_role == Role.VIEWER
    # root2 is now the only root admin: nobody takes it away, by revoking or disabling.
    lone = UserAdmin(store, User(id=0, username="x", grants=store.get_user("root2").grants))
    assert refused(lone.revoke, "root2", "/") == 403  # would leave no enabled root admin
    assert refused(lone.set_disabled, "root2", True) == 403
    assert refused(lone.grant, "root2", Role.MANAGER, "/") == 403
    assert not store.get_user("root2").disabled


def test_a_prefecture_admin_administers_where_no_admin_of_the_root_exists(store) -> None:
    """A deployment whose top admins hold the prefecture (the demo's): they grant, revoke and
    disable inside it; there is no admin of `/` to keep."""
    store.revoke("root", "/")
    store.add_user("dali-admin", PASSWORD, Role.ADMIN, "dali")
    admin = as_user(store, "dali-admin")
    admin.grant("town-viewer", Role.MANAGER, XISHAN)
    assert store.get_user("town-viewer").top_role == Role.MANAGER
    admin.grant("county-mgr", Role.VIEWER, HAIDONG)
    admin.revoke("county-mgr", HAIDONG)
    admin.set_disabled("town-admin", True)
    assert store.get_user("town-admin").disabled


def test_reset_password_ends_sessions_and_disable_ends_them_too(store) -> None:
    town = as_user(store, "town-admin")
    viewer = store.get_user("town-viewer")
    token = store.start_session(viewer).token
    new = town.reset_password("town-viewer", None)
    assert store.session(token) is None
    assert store.authenticate("town-viewer", new, "10.0.0.2").id == viewer.id
    token = store.start_session(viewer).token
    town.set_disabled("town-viewer", True)
    assert store.session(token) is None
    assert generate_password("abc") != generate_password("abc")

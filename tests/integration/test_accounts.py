"""Logging in and out, throttling, disabling, revoking phones, and who may manage whom."""

from datetime import timedelta

import pytest

from fieldapp.extensions import db
from fieldapp.models import Device, Role, Team, User


def user(username: str) -> User:
    return db.session.scalar(db.select(User).where(User.username == username))


def test_login_opens_the_role_home_and_logout_ends_it(login):
    client = login("courier1")
    home = client.get("/", headers={"Accept-Language": "en"})
    body = home.get_data(as_text=True)
    assert "Hello, 李师傅" in body and "福民便利店" in body  # the courier's shops
    assert client.post("/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_a_logout_sticks_even_when_an_old_session_cookie_comes_back(login):
    """A sync call answered just after the logout can set the old cookie again on the phone."""
    client = login("courier1")
    old_cookie = client.raw.get_cookie("session").value
    assert client.post("/logout").status_code == 302
    client.raw.set_cookie("session", old_cookie)  # the late response's Set-Cookie
    assert client.get("/").status_code == 302
    assert client.raw.get("/api/sync/pull?cursor=0").status_code == 401
    # Signing in again on the same phone works, and the cookie from before still does not.
    assert client.login("courier1", "demo-2026").status_code == 302
    assert client.get("/").status_code == 200
    client.raw.set_cookie("session", old_cookie)
    assert client.get("/").status_code == 302


def test_wrong_password_is_refused_with_a_clear_message(demo, client):
    response = client.login("courier1", "not-the-password", headers={"Accept-Language": "en"})
    assert response.status_code == 200
    assert "Wrong username or password." in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_five_failures_lock_the_account_until_an_admin_unlocks_it(demo, client, login):
    for _ in range(5):
        client.login("guard1", "wrong-password-1")
    refused = client.login("guard1", "demo-2026", headers={"Accept-Language": "zh-CN"})
    assert "账号已锁定" in refused.get_data(as_text=True)
    assert user("guard1").locked_until is not None

    admin = login("admin")
    admin.get("/people")
    assert admin.post(f"/people/{user('guard1').id}/unlock").status_code == 302
    assert client.login("guard1", "demo-2026").status_code == 302


def test_one_address_is_throttled_across_accounts(demo, client):
    demo.config["LOGIN_MAX_FAILURES_PER_ADDRESS"] = 3
    for name in ("courier1", "courier2", "guard1"):
        client.login(name, "wrong-password-1")
    response = client.login("rep1", "demo-2026", headers={"Accept-Language": "en"})
    assert response.status_code == 429
    assert "Please wait 15 minutes" in response.get_data(as_text=True)


def test_disabling_a_user_signs_them_out_everywhere_at_once(login):
    phone_a, phone_b = login("courier2"), login("courier2")
    admin = login("admin")
    admin.get("/people")
    admin.post(f"/people/{user('courier2').id}/active", {"active": "0"})
    assert phone_a.get("/").status_code == 302
    assert phone_b.get("/").status_code == 302
    assert "disabled" in phone_a.login(
        "courier2", "demo-2026", headers={"Accept-Language": "en"}
    ).get_data(as_text=True)


def test_password_reset_ends_sessions_and_enforces_the_password_rule(login):
    courier = login("courier1")
    admin = login("admin")
    target = user("courier1").id
    admin.get(f"/people/{target}")
    weak = admin.post(
        f"/people/{target}/password", {"password": "12345678"}, headers={"Accept-Language": "en"}
    )
    assert weak.status_code == 400
    assert "Mix letters with digits or symbols." in weak.get_data(as_text=True)
    assert courier.get("/").status_code == 200  # nothing changed yet
    assert admin.post(f"/people/{target}/password", {"password": "new-pass-42"}).status_code == 302
    assert courier.get("/").status_code == 302
    assert courier.login("courier1", "new-pass-42").status_code == 302


def test_a_forged_post_without_csrf_token_is_rejected(login):
    admin = login("admin")
    target = user("courier1").id
    response = admin.raw.post(
        f"/people/{target}/active", data={"active": "0"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400
    assert "Reload the page and try again" in response.get_data(as_text=True)
    assert user("courier1").active


@pytest.mark.parametrize("username", ["courier1", "guard1", "rep1"])
def test_workers_cannot_reach_management_pages(login, username):
    client = login(username)
    for url in ("/people", "/sites", "/devices", "/teams", "/people/new"):
        assert client.get(url).status_code == 403, url


def test_supervisor_manages_only_their_teams_and_cannot_create_admins(login):
    other = Team(org_id=user("admin").org_id, name="别的班组", kind="delivery")
    db.session.add(other)
    db.session.flush()
    outsider = User(
        org_id=other.org_id,
        team_id=other.id,
        username="outsider",
        display_name="外组员工",
        role=Role.COURIER,
    )
    outsider.set_password("demo-2026")
    db.session.add(outsider)
    db.session.commit()

    supervisor = login("supervisor")
    people = supervisor.get("/people").get_data(as_text=True)
    assert "李师傅" in people and "外组员工" not in people
    assert supervisor.get(f"/people/{outsider.id}").status_code == 404
    assert supervisor.get("/teams").status_code == 200
    assert supervisor.get("/teams/new").status_code == 403
    form = supervisor.get("/people/new").get_data(as_text=True)
    assert 'value="admin"' not in form and 'value="courier"' in form
    assert "外组员工" in login("admin").get("/people").get_data(as_text=True)


def test_admin_adds_a_user_who_can_then_log_in(login, client):
    admin = login("admin")
    admin.get("/people/new")
    team = db.session.scalar(db.select(Team).where(Team.name == "保安一队"))
    response = admin.post(
        "/people/new",
        {
            "username": "guard3",
            "display_name": "孙保安",
            "role": "guard",
            "team_id": str(team.id),
            "phone": "13800000000",
            "password": "start-2026",
        },
    )
    assert response.status_code == 302
    duplicate = admin.post(
        "/people/new",
        {
            "username": "guard3",
            "display_name": "重名",
            "role": "guard",
            "team_id": "0",
            "password": "start-2026",
        },
        headers={"Accept-Language": "en"},
    )
    assert "This name is already taken." in duplicate.get_data(as_text=True)
    assert client.login("guard3", "start-2026").status_code == 302


def test_a_revoked_phone_is_signed_out_and_cannot_sign_in_again(login, demo):
    phone_id = "2f1c8e4a-6b1d-4f0e-9a65-3c2d1e0f9b8a"
    phone = login("guard2")
    phone.post("/logout")
    assert phone.login("guard2", "demo-2026", device_id=phone_id).status_code == 302
    device = db.session.get(Device, phone_id)
    assert device is not None and device.user.username == "guard2"

    admin = login("admin")
    admin.get("/devices")
    assert admin.post(f"/devices/{phone_id}/revoke").status_code == 302
    assert phone.get("/").status_code == 403
    again = phone.login(
        "guard2", "demo-2026", device_id=phone_id, headers={"Accept-Language": "en"}
    )
    assert again.status_code == 403
    assert "revoked by an administrator" in again.get_data(as_text=True)


def test_remember_this_phone_keeps_the_session_for_a_week_of_shifts(demo, client):
    response = client.login("rep1", "demo-2026", remember="y")
    cookie = response.headers["Set-Cookie"]
    assert "Expires=" in cookie and "HttpOnly" in cookie
    assert demo.config["PERMANENT_SESSION_LIFETIME"] >= timedelta(days=7)
    without = client.raw.application.test_client()
    from tests.helpers import Client

    plain = Client(without).login("rep2", "demo-2026")
    assert "Expires=" not in plain.headers["Set-Cookie"]


def test_language_choice_is_kept_for_the_user(login):
    client = login("rep1")
    client.get("/")
    client.post("/language", {"lang": "en", "next": "/"})
    assert user("rep1").locale == "en"
    other_phone = login("rep1")
    body = other_phone.get("/", headers={"Accept-Language": "zh-CN"}).get_data(as_text=True)
    assert "Hello, 孙经理" in body


def test_language_switch_never_redirects_off_site(client):
    client.get("/login")
    response = client.post("/language", {"lang": "zh_CN", "next": "//evil.example/"})
    assert response.headers["Location"] == "/"


def test_the_first_admin_of_a_new_organisation_is_made_from_the_command_line(app, client):
    from fieldapp.models import Organisation

    runner = app.test_cli_runner()
    args = ["create-admin", "--org-code", "HZ", "--username", "boss", "--name", "钱总"]
    no_org = runner.invoke(args=args, input="long-pass-1\nlong-pass-1\n")
    assert no_org.exit_code != 0 and "--org-name" in no_org.output
    weak = runner.invoke(args=[*args, "--org-name", "杭州安保"], input="12345678\n12345678\n")
    assert weak.exit_code != 0 and db.session.scalar(db.select(User.id)) is None

    made = runner.invoke(args=[*args, "--org-name", "杭州安保"], input="long-pass-1\nlong-pass-1\n")
    assert made.exit_code == 0, made.output
    assert "Created organisation HZ" in made.output
    org = db.session.scalar(db.select(Organisation).where(Organisation.code == "HZ"))
    admin = db.session.scalar(db.select(User).where(User.username == "boss"))
    assert org.timezone == "Asia/Shanghai" and admin.org_id == org.id and admin.role == Role.ADMIN
    assert client.login("boss", "long-pass-1").status_code == 302

    again = runner.invoke(args=args, input="long-pass-2\nlong-pass-2\n")  # the name is taken
    assert again.exit_code != 0 and "taken" in again.output
    second = ["create-admin", "--org-code", "HZ", "--username", "deputy", "--name", "孙副总"]
    scripted = runner.invoke(args=second, env={"FIELDAPP_ADMIN_PASSWORD": "long-pass-3"})
    assert scripted.exit_code == 0 and "Kept organisation HZ" in scripted.output

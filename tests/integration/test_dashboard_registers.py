"""The registers page on SQLite and PostgreSQL: handovers (REC-08), gate register (REC-15),
spot checks (REC-13), incident log, sign-ins (REC-16) and complaint records (REC-06) of two
teams, filtered by date, site and worker, as CSV, XLSX (read back) and print page; team B's
supervisor gets none of team A's rows."""

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook

from fieldapp.extensions import db
from fieldapp.patrols.models import GateEntry, GateExit, Handover, ShiftSignIn, SpotCheck
from tests.integration.test_dashboard import log_in, world  # noqa: F401  (fixtures)

# 10 Oct 2026 09:00 in Shanghai.
T = datetime(2026, 10, 10, 1, 0, tzinfo=UTC)
RANGE = "from=2026-10-01&to=2026-10-31"


def uid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def seeded(world):  # noqa: F811
    w = world
    post_a, _ = w.guard_site("posta")
    post_b, _ = w.guard_site("postb")
    shift_a = w.shift(post_a, "guarda", T, T + timedelta(hours=8))
    shift_b = w.shift(post_b, "guardb", T, T + timedelta(hours=8))
    for shift, guard, site in ((shift_a, "guarda", "posta"), (shift_b, "guardb", "postb")):
        site_id = w.sites[site].id
        db.session.add(
            Handover(
                id=uid(),
                org_id=w.org.id,
                site_id=site_id,
                shift_id=shift.id,
                outgoing_guard_id=w.id(guard),
                incoming_guard_id=w.id(guard),
                scheduled_at=T,
                actual_at=T + timedelta(minutes=12),
                late=True,
                equipment="对讲机2台",
                outgoing_signature="a" * 64,
                incoming_signature="b" * 64,
                received_at=T,
            )
        )
        db.session.add(
            ShiftSignIn(
                id=uid(),
                org_id=w.org.id,
                shift_id=shift.id,
                guard_id=w.id(guard),
                action="in",
                at=T + timedelta(minutes=3),
                received_at=T,
                distance_m=40,
            )
        )
        entry = GateEntry(
            id=uid(),
            org_id=w.org.id,
            site_id=site_id,
            guard_id=w.id(guard),
            entry_kind="visitor",
            at=T + timedelta(hours=1),
            received_at=T,
            name="访客张三",
            id_number="110101199001011234",
            host="李经理",
            purpose="送货",
            exited_at=T + timedelta(hours=2),  # as apply_gate_exit sets it with the exit
        )
        db.session.add(entry)
        db.session.flush()
        db.session.add(
            GateExit(
                id=uid(),
                org_id=w.org.id,
                entry_id=entry.id,
                guard_id=w.id(guard),
                at=T + timedelta(hours=2),
            )
        )
        w.incident(site, guard, T + timedelta(hours=3))
    # Spot checks of guard A: 10 Oct (asleep) and 2 Nov (outside the range).
    for at, violations in ((T + timedelta(hours=4), ["sleeping"]), (T + timedelta(days=23), [])):
        db.session.add(
            SpotCheck(
                id=uid(),
                org_id=w.org.id,
                site_id=w.sites["posta"].id,
                supervisor_id=w.id("supa"),
                guard_id=w.id("guarda"),
                at=at,
                received_at=at,
                guard_present=True,
                in_uniform=False,
                violations=violations,
                findings="睡岗",
            )
        )
    w.complaint("va", "repa", 21, T)
    w.complaint("vb", "repb", 22, T)
    # 30 Sep 23:30 in Shanghai: outside an October range.
    w.complaint("va", "repa", 23, datetime(2026, 9, 30, 15, 30, tzinfo=UTC))
    db.session.commit()
    return w


def csv_rows(client, url) -> list[list[str]]:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_each_register_lists_the_teams_records_of_the_range(seeded, log_in):  # noqa: F811
    client = log_in("supa")
    page = client.get(f"/dashboard/registers?{RANGE}").get_data(as_text=True)
    for key in ("handovers", "gate", "spot-checks", "incidents", "sign-ins", "complaints"):
        assert f'data-register="{key}"' in page, key
        assert f"/dashboard/registers/{key}.xlsx?from=2026-10-01" in page
    assert "/deliveries/registers/status.xlsx?from=2026-10-01" in page  # REC-04 reused

    handovers = csv_rows(client, f"/dashboard/registers/handovers.csv?{RANGE}")
    assert handovers[0][:3] == ["scheduled", "handed_over", "site"]
    assert handovers[1:] == [
        [
            "2026-10-10 09:00",
            "2026-10-10 09:12",
            "甲大门岗",
            "赵保安",
            "赵保安",
            "yes",
            "对讲机2台",
            "",
            "",
            "",
            "yes",
        ]
    ]
    gate = csv_rows(client, f"/dashboard/registers/gate.csv?{RANGE}")
    assert len(gate) == 2 and gate[1][5] == "访客张三" and gate[1][-1] == "2026-10-10 11:00"
    assert "110101199001011234" not in str(gate)  # the ID number stays off the register
    checks = csv_rows(client, f"/dashboard/registers/spot-checks.csv?{RANGE}")
    assert [r[0] for r in checks[1:]] == ["2026-10-10 13:00"]  # 2 Nov is outside
    assert checks[1][4:7] == ["yes", "no", "sleeping"]
    assert len(csv_rows(client, f"/dashboard/registers/incidents.csv?{RANGE}")) == 2
    sign_ins = csv_rows(client, f"/dashboard/registers/sign-ins.csv?{RANGE}")
    assert sign_ins[1:] == [["2026-10-10 09:03", "甲大门岗", "赵保安", "in", "no", "40"]]
    complaints = csv_rows(client, f"/dashboard/registers/complaints.csv?{RANGE}")
    assert [r[0] for r in complaints[1:]] == ["DASH-0021"]  # 22 is team B's, 23 September's

    # Nothing of team A for team B's supervisor, and its own rows.
    other = log_in("supb")
    assert [r[2] for r in csv_rows(other, f"/dashboard/registers/handovers.csv?{RANGE}")[1:]] == [
        "乙大门岗"
    ]
    assert len(csv_rows(other, f"/dashboard/registers/spot-checks.csv?{RANGE}")) == 1
    b_complaints = csv_rows(other, f"/dashboard/registers/complaints.csv?{RANGE}")
    assert [r[0] for r in b_complaints[1:]] == ["DASH-0022"]
    assert "甲大门岗" not in other.get(f"/dashboard/registers?{RANGE}").get_data(as_text=True)
    assert log_in("guarda").get("/dashboard/registers").status_code == 403


def test_filters_by_site_worker_and_date(seeded, log_in):  # noqa: F811
    admin = log_in("admin")
    assert len(csv_rows(admin, f"/dashboard/registers/gate.csv?{RANGE}")) == 3
    site_b = seeded.sites["postb"].id
    gate_b = csv_rows(admin, f"/dashboard/registers/gate.csv?{RANGE}&site={site_b}")
    assert [r[1] for r in gate_b[1:]] == ["乙大门岗"]
    guard_a = seeded.id("guarda")
    incidents = csv_rows(admin, f"/dashboard/registers/incidents.csv?{RANGE}&worker={guard_a}")
    assert [r[2] for r in incidents[1:]] == ["赵保安"]
    november = csv_rows(admin, "/dashboard/registers/spot-checks.csv?from=2026-11-01&to=2026-11-30")
    assert [r[0] for r in november[1:]] == ["2026-11-02 09:00"]
    assert (
        admin.get("/dashboard/registers/gate.csv?from=2026-10-31&to=2026-10-01").status_code == 400
    )
    assert admin.get("/dashboard/registers/gate.csv?from=yesterday").status_code == 400
    assert admin.get(f"/dashboard/registers/nope.csv?{RANGE}").status_code == 404


def test_the_xlsx_and_the_print_page_show_the_same_rows_translated(seeded, log_in):  # noqa: F811
    client = log_in("supa")
    response = client.raw.get(f"/dashboard/registers/spot-checks.xlsx?{RANGE}")
    assert response.status_code == 200
    assert "spot-checks-2026-10-01-2026-10-31.xlsx" in response.headers["Content-Disposition"]
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("Time", "Site", "Inspector", "Guard")
    assert rows[1][:6] == (
        datetime(2026, 10, 10, 13, 0),
        "甲大门岗",
        "甲主管",
        "赵保安",
        "Yes",
        "No",
    )
    assert len(rows) == 2

    page = client.get(f"/dashboard/registers/complaints/print?{RANGE}").get_data(as_text=True)
    assert page.count("<tr data-row>") == 1 and "DASH-0021" in page and "Phone hotline" in page
    assert "Checked by (department head)" in page

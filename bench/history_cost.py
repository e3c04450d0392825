"""Cost must not grow with history: the same day's work on top of 10,000 and 1,000,000 records.

    .venv/bin/python bench/history_cost.py                      # PostgreSQL on 127.0.0.1
    .venv/bin/python bench/history_cost.py --postgres URL       # a server's maintenance DB URL
    .venv/bin/python bench/history_cost.py --sizes 10000 --plans   # print EXPLAIN ANALYZE

For each size it creates a database of its own (``fa_bench_hist_<random>``), runs the real
migrations and the demo seed, and generates history with set-based ``INSERT ... SELECT
generate_series`` on the server: routes, stops, proofs of delivery, arrivals, shifts, checkpoint
scans, sign-ins, incidents, gate entries and exits, visits, complaints and their events, the
change feed and the mutation ledger. The months the KPI page reads (this one and the five
before it, for its trend charts) and today are the same in every size (about 50,000 rows: one
supervisor's three teams at a steady pace, so a smaller size gets just these); a bigger size
adds older history (three times that pace, years back), so only the history differs.

It then times, through the app (Flask test client, full request and page rendering), with
the sizes interleaved so that the load of a shared machine falls on both alike:
  1. ``GET /api/sync/pull`` for a courier with a recent cursor (200 changes back);
  2. ``GET /dashboard/`` (the supervisor's today board);
  3. ``GET /dashboard/kpi`` (the KPI page of this month),
and prints the median (and fastest) of ``--repeat`` runs per size and the ratio largest /
smallest (target within 1.5x); then the database's own share, the summed EXPLAIN ANALYZE
execution time of each request's SELECTs, which the Python load of a busy machine hardly
moves. ``--plans`` prints EXPLAIN (ANALYZE, BUFFERS) of every SELECT of each request taking
0.2 ms or more, on the largest size. The databases are dropped afterwards (``--keep`` keeps
them).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FIELDAPP_INSTANCE", tempfile.mkdtemp(prefix="fieldapp-bench-hist-"))

ZONE = ZoneInfo("Asia/Shanghai")
TREND_MONTHS = 6  # the KPI page's trend charts: this month and the five before (drilldown.trend)
OLD_PACE = 3  # older history is generated three times as dense
TABLES = (
    "delivery_route",
    "delivery_stop",
    "delivery_proof",
    "delivery_stop_arrival",
    "patrol_shift",
    "patrol_scan",
    "patrol_sign_in",
    "patrol_incident",
    "patrol_gate_entry",
    "patrol_gate_exit",
    "visit",
    "complaint",
    "complaint_event",
    "sync_change",
    "sync_mutation",
)

# One block of days [:d0, :d1] at pace :k (today: :today is true, so work is still open).
# Demo ids: org 1; teams 1 (deliveries), 2 (guards), 3 (reps); couriers 3, 4; guards 5, 6;
# reps 7, 8; shops 1-4; guarded post site 5 with posts 1, 2 and checkpoints 1-4; offices 6, 7.
GENERATE = [
    # routes: 4 a day per unit of pace
    """INSERT INTO delivery_route (org_id, team_id, date, name, kind, courier_id, vehicle_plate,
         two_person_crew, created_at)
       SELECT 1, 1, d::date, 'B' || r, 'fixed', 3 + r % 2, '沪A' || r, false, d
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 4 * :k) r""",
    # stops: 10 per route; history delivered or refused, today half still to do
    """INSERT INTO delivery_stop (id, org_id, route_id, sequence, site_id, customer_name,
         customer_code, address, customer_phone, promised_at, ticket_no, tote_boxes,
         amount_due_fen, settlement, state, on_time, delivered_at, version, created_at)
       SELECT 's' || r.id || '-' || n, 1, r.id, n, 1 + n % 4, '店' || n, 'C' || n, '', '',
              (r.date + time '09:00') AT TIME ZONE 'Asia/Shanghai' + n * interval '20 minutes',
              'T' || r.id || '-' || n, '', 10000 + n, 'electronic',
              CASE WHEN :today AND n > 5 THEN 'pending' WHEN n = 10 THEN 'refused'
                   ELSE 'delivered' END,
              CASE WHEN :today AND n > 5 OR n = 10 THEN NULL ELSE n % 7 <> 0 END,
              CASE WHEN :today AND n > 5 OR n = 10 THEN NULL
                   ELSE (r.date + time '09:10') AT TIME ZONE 'Asia/Shanghai'
                        + n * interval '20 minutes' END,
              1, r.created_at
       FROM delivery_route r, generate_series(1, 10) n
       WHERE r.name LIKE 'B%' AND r.date BETWEEN :d0 AND :d1""",
    # arrivals and proofs of the delivered stops (one in 20 reports damage)
    """INSERT INTO delivery_stop_arrival (id, org_id, user_id, stop_id, device_time, received_at,
         inside_geofence, distance_m, out_of_order_reason)
       SELECT 'a' || s.id, 1, r.courier_id, s.id, s.delivered_at - interval '5 minutes',
              s.delivered_at, true, 12, ''
       FROM delivery_stop s JOIN delivery_route r ON r.id = s.route_id
       WHERE r.name LIKE 'B%' AND r.date BETWEEN :d0 AND :d1 AND s.state = 'delivered'""",
    """INSERT INTO delivery_proof (id, org_id, user_id, stop_id, device_time, received_at,
         checked_codes, scanned_codes, special_confirmed, amount_due_fen, condition,
         damage_note, market_note, product_info_explained, driver_confirmed,
         deliverer_confirmed, on_time, correction_reason)
       SELECT 'p' || s.id, 1, r.courier_id, s.id, s.delivered_at, s.delivered_at,
              '[]', '[]', false, s.amount_due_fen,
              CASE WHEN s.sequence = 3 AND r.id % 2 = 0 THEN 'damaged' ELSE 'ok' END,
              '', '', true, true, true, s.on_time, ''
       FROM delivery_stop s JOIN delivery_route r ON r.id = s.route_id
       WHERE r.name LIKE 'B%' AND r.date BETWEEN :d0 AND :d1 AND s.state = 'delivered'""",
    # shifts: 3 a day per unit of pace, 8 hours each, alternating guards and posts
    """INSERT INTO patrol_shift (org_id, site_id, post_id, guard_id, starts_at, ends_at,
         created_at)
       SELECT 1, 5, 1 + i % 2, 5 + i % 2,
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + (i % 3) * interval '8 hours',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + (i % 3 + 1) * interval '8 hours',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai'
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 3 * :k) i""",
    # scans: 4 rounds x 4 checkpoints per shift (rounds every 120 minutes), a sign-in
    """INSERT INTO patrol_scan (id, org_id, shift_id, checkpoint_id, guard_id, round_number,
         scanned_at, received_at, manual, note, hazard)
       SELECT 'x' || sh.id || '-' || rr || '-' || c, 1, sh.id, c, sh.guard_id, rr,
              sh.starts_at + (rr - 1) * interval '2 hours' + c * interval '5 minutes',
              sh.starts_at + (rr - 1) * interval '2 hours' + c * interval '5 minutes',
              false, '', false
       FROM patrol_shift sh, generate_series(1, 4) rr, generate_series(1, 4) c
       WHERE sh.starts_at >= CAST(:d0 AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND sh.starts_at < (CAST(:d1 AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND sh.starts_at + (rr - 1) * interval '2 hours' < now()""",
    """INSERT INTO patrol_sign_in (id, org_id, shift_id, guard_id, action, at, received_at,
         outside_geofence)
       SELECT 'i' || sh.id, 1, sh.id, sh.guard_id, 'in', sh.starts_at, sh.starts_at, false
       FROM patrol_shift sh
       WHERE sh.starts_at >= CAST(:d0 AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND sh.starts_at < (CAST(:d1 AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND sh.starts_at < now()""",
    # an incident a day (closed, except today's), gate visitors in and out
    """INSERT INTO patrol_incident (id, org_id, site_id, reported_by_id, incident_type,
         severity, place, description, people, photos, reported_at, received_at, closed_at)
       SELECT 'n' || to_char(d, 'YYYYMMDD') || '-' || i, 1, 5, 5, 'theft', 'minor', '', '', '',
              '[]', d::date::timestamp AT TIME ZONE 'Asia/Shanghai',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai',
              CASE WHEN :today THEN NULL
                   ELSE d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '1 hour' END
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, :k) i""",
    """INSERT INTO patrol_gate_entry (id, org_id, site_id, guard_id, entry_kind, direction, at,
         received_at, name, id_type, id_number, organisation, host, purpose, host_notified,
         plate, driver, goods, pass_number, exited_at)
       SELECT 'g' || to_char(d, 'YYYYMMDD') || '-' || i, 1, 5, 5, 'visitor', 'in',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + i * interval '1 hour',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + i * interval '1 hour',
              '访客' || i, 'id_card', '', '', '', '', true, '', '', '', '',
              -- the time of the exit below, as the app sets it with the exit
              CASE WHEN NOT :today THEN d::date::timestamp AT TIME ZONE 'Asia/Shanghai'
                                        + i * interval '1 hour' + interval '30 minutes' END
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 2 * :k) i""",
    """INSERT INTO patrol_gate_exit (id, org_id, entry_id, guard_id, at)
       SELECT 'o' || substr(g.id, 2), 1, g.id, 5, g.at + interval '30 minutes'
       FROM patrol_gate_entry g
       WHERE g.id LIKE 'g%' AND g.at >= CAST(:d0 AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND g.at < (CAST(:d1 AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND NOT :today""",
    # visits: 6 a day per unit of pace
    """INSERT INTO visit (id, org_id, team_id, rep_id, site_id, planned_date, purpose, state,
         created_at)
       SELECT 'v' || to_char(d, 'YYYYMMDD') || '-' || i, 1, 3, 7 + i % 2, 6 + i % 2, d::date,
              '', CASE WHEN :today THEN 'planned' ELSE 'done' END, d
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 6 * :k) i""",
    # complaints: one a day per unit of pace (closed), three events each
    """INSERT INTO complaint (id, org_id, site_id, team_id, slip_number, client_name,
         complainant, complainant_phone, channel, subject, content, category, cause_class,
         severity, request, solved_on_spot, first_known_at, logged_at, received_at,
         logged_by_id, owner_id, state, investigate_by, reply_by, version, department, plan,
         answer, callback_result, client_opinion, root_cause, corrective_action, lessons,
         explanation, closed_at)
       SELECT 'c' || to_char(d, 'YYYYMMDD') || '-' || i, 1, 6, 3,
              'K' || to_char(d, 'YYYYMMDD') || '-' || i, '东方物业', '王',
              '', 'phone', '投诉', '', 'service', 'staff', 'general', '', false,
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '10 hours',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '10 hours',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '10 hours',
              7, 7 + i % 2, CASE WHEN :today THEN 'received' ELSE 'closed' END,
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '34 hours',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '82 hours',
              4, '', '', '', '', '', '', '', '', '',
              CASE WHEN :today THEN NULL
                   ELSE d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + interval '3 days' END
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, :k) i""",
    """INSERT INTO complaint_event (org_id, complaint_id, version, step, from_state, to_state,
         by_id, at, data)
       SELECT 1, c.id, v + 1, 'bench', (ARRAY['received', 'routed', 'answered'])[v],
              (ARRAY['routed', 'answered', 'closed'])[v], c.owner_id,
              c.logged_at + v * interval '20 hours', '{}'
       FROM complaint c, generate_series(1, 3) v
       WHERE c.id LIKE 'c%' AND c.state = 'closed'
         AND c.logged_at >= CAST(:d0 AS date)::timestamp AT TIME ZONE 'Asia/Shanghai'
         AND c.logged_at < (CAST(:d1 AS date) + 1)::timestamp AT TIME ZONE 'Asia/Shanghai'""",
    # the change feed and the ledger: 60 a day per unit of pace, in time order
    """INSERT INTO sync_change (org_id, user_id, team_id, entity, entity_id, deleted, data, at)
       SELECT 1, CASE WHEN n % 3 = 0 THEN 3 + n % 2 WHEN n % 3 = 1 THEN NULL ELSE 5 END,
              CASE WHEN n % 3 = 1 THEN 1 + n % 3 ELSE NULL END,
              'delivery.stop', 'e' || n, false, '{"state": "delivered"}',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + n * interval '1 minute'
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 60 * :k) n
       WHERE d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + n * interval '1 minute'
             < now() - interval '1 minute'
       ORDER BY 8""",
    """INSERT INTO sync_mutation (id, org_id, user_id, device_id, seq, record_type, record_id,
         content_hash, payload, status, device_time, received_at, skew_seconds, skew_flagged)
       SELECT md5(random()::text)::uuid::text, 1, 3 + n % 2, 'bench-device-' || (3 + n % 2),
              nextval('bench_mutation_seq'), 'delivery.arrival', 'r' || n, repeat('0', 64),
              '{}', 'applied',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + n * interval '1 minute',
              d::date::timestamp AT TIME ZONE 'Asia/Shanghai' + n * interval '1 minute', 0, false
       FROM generate_series(CAST(:d0 AS date), CAST(:d1 AS date), interval '1 day') d,
            generate_series(1, 60 * :k) n""",
]


def base_url(args) -> str:
    return args.postgres


def create_database(admin_url: str) -> tuple[str, str]:
    name = f"fa_bench_hist_{uuid.uuid4().hex[:8]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return name, make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def trend_start(today: date) -> date:
    """The first day of the KPI page's earliest trend month."""
    months = today.year * 12 + today.month - 1 - (TREND_MONTHS - 1)
    return date(months // 12, months % 12 + 1, 1)


def generate(url: str, size: int, today: date) -> dict[str, int]:
    """Fill the history; the recent block is the same for every size."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SEQUENCE IF NOT EXISTS bench_mutation_seq"))
        conn.execute(
            text(
                "INSERT INTO device (id, user_id, label, created_at, last_seq, pending_count) "
                "VALUES ('bench-device-3', 3, 'bench', now(), 0, 0), "
                "('bench-device-4', 4, 'bench', now(), 0, 0)"
            )
        )

    def block(d0: date, d1: date, k: int, today_block: bool = False) -> None:
        with engine.begin() as conn:
            for statement in GENERATE:
                conn.execute(text(statement), {"d0": d0, "d1": d1, "k": k, "today": today_block})

    per_day = 309  # rows one day at pace 1 makes (see GENERATE), to size the older history
    first_recent = trend_start(today)  # identical in every size from here on
    recent = ((today - first_recent).days + 1) * per_day
    old_days = max(0, round((size - recent) / (per_day * OLD_PACE)))
    if old_days:
        start = first_recent - timedelta(days=old_days)
        step = 120  # keep each transaction a modest size
        for offset in range(0, old_days, step):
            d0 = start + timedelta(days=offset)
            d1 = min(first_recent - timedelta(days=1), d0 + timedelta(days=step - 1))
            block(d0, d1, OLD_PACE)
    block(first_recent, today - timedelta(days=1), 1)
    block(today, today, 1, today_block=True)
    counts = {}
    with engine.begin() as conn:
        for table in TABLES:
            counts[table] = conn.execute(text(f'SELECT count(*) FROM "{table}"')).scalar()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does to a settled database
    engine.dispose()
    return counts


class Recorder:
    """Keeps the SQL statements a request runs, with their parameters and durations."""

    def __init__(self, engine):
        self.on = False
        self.statements = []
        event.listen(engine, "before_cursor_execute", self.before)
        event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn, cursor, statement, parameters, context, executemany):
        conn.info["bench_started"] = time.perf_counter()

    def after(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
            self.statements.append((elapsed, statement, parameters))


def prepare_requests(url: str):
    """An app on the database, logged-in clients and the three requests to time."""
    from fieldapp import create_app
    from fieldapp.extensions import db
    from tests.helpers import Client

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    with app.app_context():
        recorder = Recorder(db.engine)
        cursor = db.session.scalar(text("SELECT max(seq) FROM sync_change")) - 200
        db.session.remove()
    device = str(uuid.uuid4())
    courier = Client(app.test_client())
    courier.login("courier1", "demo-2026", device_id=device)
    supervisor = Client(app.test_client())
    supervisor.login("supervisor", "demo-2026", device_id=str(uuid.uuid4()))
    month = datetime.now(UTC).astimezone(ZONE).strftime("%Y-%m")
    return (
        app,
        recorder,
        {
            "pull, recent cursor": (courier, f"/api/sync/pull?cursor={cursor}&device_id={device}"),
            "today board": (supervisor, "/dashboard/"),
            "KPI month page": (supervisor, f"/dashboard/kpi?month={month}"),
        },
    )


def timed_get(client, path: str) -> float:
    began = time.perf_counter()
    response = client.raw.get(path)
    elapsed = time.perf_counter() - began
    if response.status_code != 200:
        raise RuntimeError(f"{path}: {response.status_code}")
    return elapsed


def capture(recorder, client, path: str) -> list:
    """The statements one request runs: [(seconds, statement, parameters)]."""
    recorder.statements, recorder.on = [], True
    client.raw.get(path)
    recorder.on = False
    return recorder.statements


def sql_time(app, recorder, requests_: dict, tries: int = 3) -> dict[str, float]:
    """Per request: the database's own execution time of its SELECTs (EXPLAIN ANALYZE), in ms,
    each statement's fastest of ``tries``. Little affected by the Python load on the machine."""
    from fieldapp.extensions import db

    result = {}
    for name, (client, path) in requests_.items():
        total = 0.0
        with app.app_context(), db.engine.connect() as conn:
            for _, statement, parameters in capture(recorder, client, path):
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                best = None
                for _ in range(tries):
                    plan = conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters).all()
                    ms = float(plan[-1][0].split(":")[1].split()[0])
                    best = ms if best is None else min(best, ms)
                total += best
        result[name] = total
    return result


def print_plans(app, recorder, requests_: dict) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of every SELECT a request runs taking 0.2 ms or more."""
    from fieldapp.extensions import db

    for name, (client, path) in requests_.items():
        statements = capture(recorder, client, path)
        explained = []
        with app.app_context(), db.engine.connect() as conn:
            for _, statement, parameters in statements:
                if not statement.lstrip().upper().startswith("SELECT"):
                    continue
                plan = [
                    row[0]
                    for row in conn.exec_driver_sql(
                        "EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters
                    )
                ]
                ms = float(plan[-1].split(":")[1].split()[0])
                explained.append((ms, statement, parameters, plan))
        explained.sort(key=lambda e: -e[0])
        print(f"\n### {name} ({path}): {len(statements)} statements")
        for ms, statement, parameters, plan in explained:
            if ms < 0.2:
                continue
            print(f"\n-- execution {ms:.2f} ms\n{statement.strip()}\n-- parameters: {parameters}")
            print("\n".join(plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--postgres",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="URL of a database on the server to create the bench databases from",
    )
    parser.add_argument("--sizes", default="10000,1000000", help="record counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=30, help="timed runs per request")
    parser.add_argument("--plans", action="store_true", help="EXPLAIN ANALYZE on the largest")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    today = datetime.now(UTC).astimezone(ZONE).date()
    databases = []
    try:
        from flask_migrate import upgrade

        from fieldapp import create_app
        from fieldapp.demo import seed_demo
        from fieldapp.extensions import db

        for size in sizes:
            name, url = create_database(args.postgres)
            databases.append(name)
            app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
            with app.app_context():
                upgrade(revision="heads")
                seed_demo()
                db.session.commit()
                db.engine.dispose()
            began = time.perf_counter()
            counts = generate(url, size, today)
            total = sum(counts.values())
            print(
                f"size {size:,}: {total:,} records generated in {time.perf_counter() - began:.0f} s"
            )
            print("  " + ", ".join(f"{t} {n:,}" for t, n in counts.items()))
            databases[-1] = (name, url, total)
        prepared = [prepare_requests(url) for _, url, _ in databases]
        names = list(prepared[0][2])
        times = {(i, n): [] for i in range(len(prepared)) for n in names}
        # Interleaved (size A, size B, size A, ...) so the machine's changing load hits both.
        for round_ in range(args.repeat + 2):
            for n in names:
                for i, (_, _, requests_) in enumerate(prepared):
                    elapsed = timed_get(*requests_[n])
                    if round_ >= 2:  # two warm-up rounds
                        times[(i, n)].append(elapsed * 1000)
        sql = [sql_time(*p) for p in prepared]
        if args.plans:
            print_plans(*prepared[-1])
        small, large = 0, len(prepared) - 1
        print(
            f"\nPostgreSQL, {os.cpu_count()} cores (shared, loaded); test client, full request;"
            f" median (min) of {args.repeat} interleaved runs"
        )
        a_total, b_total = databases[small][2], databases[large][2]
        print(f"{'request':22s}{a_total:>13,} records{b_total:>17,} records   ratio")
        for n in names:
            a, b = times[(small, n)], times[(large, n)]
            ma, mb = statistics.median(a), statistics.median(b)
            verdict = "ok" if mb / ma <= 1.5 else "OVER 1.5x"
            print(
                f"{n:22s}{ma:>9.1f} ms ({min(a):5.1f}){mb:>9.1f} ms ({min(b):5.1f})"
                f"   {mb / ma:4.2f}x  {verdict}"
            )
        print("\nthe database's share: EXPLAIN ANALYZE execution time of each request's SELECTs")
        for n in names:
            a, b = sql[small][n], sql[large][n]
            verdict = "ok" if b / a <= 1.5 else "OVER 1.5x"
            print(f"{n:22s}{a:>9.2f} ms{' ' * 8}{b:>9.2f} ms{' ' * 8}   {b / a:4.2f}x  {verdict}")
    finally:
        if not args.keep:
            for entry in databases:
                drop_database(args.postgres, entry[0] if isinstance(entry, tuple) else entry)


if __name__ == "__main__":
    main()

"""CPU time of one 100-mutation push, in-process (Flask test client), with an optional profile.

    .venv/bin/python bench/profile_push.py                  # SQLite file, both kinds of push
    .venv/bin/python bench/profile_push.py --profile 25     # ... and cProfile's top 25
    .venv/bin/python bench/profile_push.py --postgres URL   # a schema of its own on the server
    .venv/bin/python bench/profile_push.py --only patrol --clock   # after the rule clock's alarms

Three pushes, as the benches send them: 100 ``test.note`` mutations (``bench/sync_ingest.py``)
as the demo courier, a patrol round (a sign-in and 99 signed checkpoint scans, two with a
photo; ``bench/load_sync.py``) as a guard, and a courier's day (the vehicle check, then arrival
and proof of delivery at 49 stops, 99 records; ``bench/load_sync.py``), a new courier each
push. Each is pushed ``--repeat`` times with new IDs; it prints the median and the fastest
wall and process-CPU time per push. CPU time is what a loaded machine moves least: it is the
figure to compare before and after a change.

``--clock`` runs the rule clock's round check first, so the round alarms of the guards' shifts
are raised and every patrol push is one that withdraws them (what ``load_sync.py`` pushes);
each push is then a different guard's first push of their shift.
"""

import argparse
import cProfile
import os
import pstats
import re
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", help="a PostgreSQL URL (postgresql+psycopg://...)")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--profile", type=int, default=0, help="print cProfile's top N")
    parser.add_argument("--only", choices=("note", "patrol", "courier"))
    parser.add_argument(
        "--clock",
        action="store_true",
        help="run the rule clock's round check first (it raises the round alarms a late push "
        "withdraws, as in load_sync.py once a worker's clock has ticked); one guard per push",
    )
    parser.add_argument(
        "--sampler", action="store_true", help="pyinstrument's call tree (pip install it)"
    )
    args = parser.parse_args()

    instance = Path(tempfile.mkdtemp(prefix="fieldapp-bench-prof-"))
    os.environ["FIELDAPP_INSTANCE"] = str(instance)
    os.environ["FIELDAPP_EXTRA_MODULES"] = "tests.sync_types"
    from sqlalchemy import create_engine, text

    schema = None
    if args.postgres:
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(args.postgres).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{args.postgres}?options=-csearch_path%3D{schema}"
    else:
        url = f"sqlite:///{instance / 'bench.sqlite3'}"
    try:
        run(url, args)
    finally:
        if schema:
            with create_engine(args.postgres).begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def run(url: str, args) -> None:
    import load_sync
    import sync_ingest

    couriers = args.repeat + 1 if args.only in (None, "courier") else 0
    guards, codes, routes = load_sync.seed(url, args.repeat + 1 if args.clock else 1, couriers)
    guard, shift_id = guards[0]

    from fieldapp import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TESTING": True})
    if args.clock:
        from fieldapp.extensions import db
        from fieldapp.models import utcnow
        from fieldapp.patrols import service as patrols

        with app.app_context():
            raised = patrols.check_rounds(utcnow())
            db.session.commit()
        print(f"  rule clock: {raised} round alarms raised before the pushes")

    class Phone:
        def __init__(self, name: str, password: str):
            self.client = app.test_client()
            page = self.client.get("/login").get_data(as_text=True)
            token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
            self.device_id = str(uuid.uuid4())
            form = {"csrf_token": token, "username": name, "password": password}
            answer = self.client.post("/login", data=form | {"device_id": self.device_id})
            assert answer.status_code == 302, answer.status_code
            home = self.client.get("/").get_data(as_text=True)
            self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', home).group(1)
            self.seq = 0

        def push(self, mutations: list[dict]) -> None:
            for m in mutations:
                self.seq += 1
                m["seq"] = self.seq
            answer = self.client.post(
                "/api/sync/push",
                json={"device_id": self.device_id, "mutations": mutations},
                headers={"X-CSRFToken": self.csrf},
            )
            bad = [r for r in answer.get_json()["results"] if r["status"] != "applied"]
            assert answer.status_code == 200 and not bad, (answer.status_code, bad[:2])

    class Guards:
        """With --clock, each push is a new guard's first: its shift as load_sync.py pushes it."""

        def __init__(self):
            self.next = 0
            self.phones = [(Phone(g, load_sync.PASSWORD), s) for g, s in guards]

        def push(self, mutations: list[dict]) -> None:
            self.phones[self.next - 1][0].push(mutations)

        def make(self) -> list[dict]:
            self.next += 1
            shift = self.phones[self.next - 1][1]
            return load_sync.shift_records(shift, codes, ["0" * 64, "1" * 64], 1)

    class Couriers:
        """Each push is a new courier's day: the vehicle check, arrival + proof at 49 stops."""

        def __init__(self):
            self.next = 0
            self.phones = [
                (Phone(name, load_sync.PASSWORD), route_id, stops)
                for name, route_id, stops in routes
            ]

        def push(self, mutations: list[dict]) -> None:
            self.phones[self.next - 1][0].push(mutations)

        def make(self) -> list[dict]:
            self.next += 1
            _, route_id, stops = self.phones[self.next - 1]
            signatures = [f"{n:064x}" for n in range(len(stops))]
            return load_sync.route_records(route_id, stops, signatures)

    patrol = Guards() if args.clock else None
    kinds = {
        "note": (Phone("courier1", "demo-2026"), lambda: sync_ingest.mutations(1, 100)),
        "patrol": (patrol, patrol.make)
        if patrol
        else (
            Phone(guard, load_sync.PASSWORD),
            lambda: load_sync.shift_records(shift_id, codes, ["0" * 64, "1" * 64], 1),
        ),
    }
    if routes:
        couriers = Couriers()
        kinds["courier"] = (couriers, couriers.make)
    import gc

    if os.environ.get("BENCH_GC") == "off":
        gc.disable()
    gc_time = [0.0, 0, 0.0]  # seconds in collections, gen-2 collections, start

    def on_gc(phase, info):
        if phase == "start":
            gc_time[2] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[2]
            gc_time[1] += info["generation"] == 2

    gc.callbacks.append(on_gc)
    print(f"profile_push on {url.split(':')[0]}; load average {load_sync._loadavg()}")
    for name, (phone, make) in kinds.items():
        if args.only and name != args.only:
            continue
        phone.push(make())  # warm-up: caches, prepared statements
        if os.environ.get("BENCH_GC") == "freeze":  # what a gc.freeze() after start-up gives
            gc.collect()
            gc.freeze()
        walls, cpus = [], []
        gc_time[:2] = [0.0, 0]
        profiler = cProfile.Profile() if args.profile else None
        if args.sampler:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005)
        for _ in range(args.repeat):
            batch = make()
            wall, cpu = time.perf_counter(), time.process_time()
            if profiler:
                profiler.start() if args.sampler else profiler.enable()
            phone.push(batch)
            if profiler:
                profiler.stop() if args.sampler else profiler.disable()
            cpus.append(time.process_time() - cpu)
            walls.append(time.perf_counter() - wall)
        print(
            f"  {name:7s} push of 100: wall median {statistics.median(walls) * 1000:6.1f} ms "
            f"(fastest {min(walls) * 1000:6.1f}), CPU median {statistics.median(cpus) * 1000:6.1f}"
            f" ms (fastest {min(cpus) * 1000:6.1f}) over {args.repeat} pushes; garbage collector"
            f" {gc_time[0] * 1000 / args.repeat:.1f} ms a push ({gc_time[1]} full collections)"
        )
        if args.sampler:
            print(profiler.output_text(unicode=False, show_all=False))
        elif profiler:
            stats = pstats.Stats(profiler)
            stats.sort_stats("cumulative").print_stats(args.profile)
            stats.sort_stats("tottime").print_stats(args.profile)
    with app.app_context():
        from fieldapp.extensions import db

        db.engine.dispose()


if __name__ == "__main__":
    main()

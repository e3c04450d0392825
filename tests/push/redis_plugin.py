"""Plugged into a worker process (FIELDAPP_EXTRA_MODULES) by the Redis tests: their kinds and
a rule-clock check that raises one alarm for the demo supervisor."""

from fieldapp import jobs
from fieldapp.extensions import db
from fieldapp.models import User
from fieldapp.push import kinds, notify
from tests.push.conftest import ALARM, ASSIGNMENT


def supervisor_alarm(now):
    supervisor = db.session.scalar(db.select(User).where(User.username == "supervisor"))
    if supervisor is not None:
        notify(
            "test.alarm",
            user_ids=[supervisor.id],
            org_id=supervisor.org_id,
            url="/rounds/r-redis",
            params={"name": "外滩中心大门岗", "m": 2},
            dedupe_key="round-late:r-redis",
        )


def init_app(app):
    kinds.declare(ASSIGNMENT)
    kinds.declare(ALARM)
    jobs.register("test.supervisor_alarm", supervisor_alarm)

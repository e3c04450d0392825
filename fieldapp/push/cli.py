"""Commands: ``flask --app wsgi vapid-keys | worker | rule-clock``."""

import click
from flask import current_app
from flask.cli import with_appcontext

from fieldapp.push import vapid


@click.command("vapid-keys")
@with_appcontext
def vapid_keys_command():
    """Create the VAPID key pair for Web Push in the instance folder (keeps an existing one)."""
    keys, created = vapid.ensure_keys(current_app.instance_path)
    click.echo(
        ("Created" if created else "Kept") + f" the VAPID key pair in {current_app.instance_path}"
    )
    click.echo(f"Public key (applicationServerKey): {keys.application_server_key}")


@click.command("worker")
@click.option("--burst", is_flag=True, help="Work until the queue is empty, then stop.")
@click.option("--no-clock", is_flag=True, help="Do not schedule the rule clock from here.")
@with_appcontext
def worker_command(burst: bool, no_clock: bool):
    """Send push notifications and run the rule clock from the Redis queue (needs REDIS_URL)."""
    from rq import SimpleWorker

    from fieldapp.jobs.clock import RedisTicker
    from fieldapp.push.queue import RedisQueue, get_queue

    app = current_app._get_current_object()
    if not app.config.get("REDIS_URL"):
        raise click.ClickException(
            "REDIS_URL is not set: without Redis the web process sends notifications itself."
        )
    q = get_queue(app)
    assert isinstance(q, RedisQueue)
    ticker = None
    if not burst and not no_clock and app.config.get("RULE_CLOCK_INTERVAL"):
        ticker = RedisTicker(app)
        ticker.start()
    # SimpleWorker runs jobs in this process, inside this app context (no fork: the database
    # pool and the HTTP sessions are reused from job to job).
    worker = SimpleWorker([q.queue], connection=q.connection)
    try:
        worker.work(burst=burst, with_scheduler=True, logging_level="WARNING")
    finally:
        if ticker:
            ticker.stop()


@click.command("rule-clock")
@click.option("--check", "names", multiple=True, help="Run only this check (repeatable).")
@with_appcontext
def rule_clock_command(names: tuple[str, ...]):
    """Run the rule clock once now (for cron, or to try a new check)."""
    from fieldapp import jobs

    for name, result in jobs.run_clock(only=names or None).items():
        click.echo(f"{name}: {result}")

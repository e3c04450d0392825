"""Entry point for gunicorn (``gunicorn wsgi:app``) and the flask CLI (``flask --app wsgi``)."""

import gc

from fieldapp import create_app

app = create_app()
# The app's modules, templates and metadata live as long as the process: moved out of the
# garbage collector's sight, a full collection no longer walks them in the middle of a sync
# push (120-150 ms every 30-60 pushes before; bench/profile_push.py with BENCH_GC=freeze).
gc.freeze()

"""The app shell: home screen per role, manifest, service worker, offline page, health check."""

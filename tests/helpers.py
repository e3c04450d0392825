"""A test client that fills in the CSRF token the way a browser form does."""

import re

_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"')


class Client:
    def __init__(self, flask_client):
        self.raw = flask_client
        self.token = None

    def get(self, url, **kwargs):
        response = self.raw.get(url, **kwargs)
        match = _TOKEN.search(response.get_data(as_text=True))
        if match:
            self.token = match.group(1)
        return response

    def post(self, url, data=None, **kwargs):
        """Post a form with the CSRF token of the last page seen (or of the login page)."""
        if self.token is None:
            self.get("/login")
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.raw.post(url, data=data, **kwargs)

    def login(self, username, password, headers=None, **fields):
        self.get("/login")
        form = {"username": username, "password": password, **fields}
        response = self.post("/login", form, headers=headers or {})
        if response.status_code == 302:
            self.get("/")  # a new session has a new CSRF token, as the browser's next page shows
        return response

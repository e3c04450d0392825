"""VEH-02: the dispatcher names the route's parking place; the day closes only there."""

import html

from sqlalchemy import select

from fieldapp.deliveries.models import Route
from fieldapp.extensions import db
from tests.integration.test_deliveries_pages import delivery_team

EN = {"Accept-Language": "en"}


def new_route(dispatcher, **fields):
    dispatcher.get("/deliveries/routes/new")
    return dispatcher.post(
        "/deliveries/routes/new",
        {
            "date": "2026-12-02",
            "name": "静安 3 号线",
            "team_id": str(delivery_team().id),
            "kind": "fixed",
            "courier_id": "0",
            **fields,
        },
        headers=EN,
    )


def test_the_dispatcher_sets_the_parking_place_and_sees_it_on_the_route(login):
    dispatcher = login("supervisor")
    response = new_route(
        dispatcher,
        parking_name="静安停车场",
        parking_latitude="31.2250",
        parking_longitude="121.4450",
        parking_radius_m="120",
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    route = db.session.scalar(select(Route).where(Route.name == "静安 3 号线"))
    assert (route.parking_name, route.parking_radius_m) == ("静安停车场", 120)
    assert (route.parking_latitude, route.parking_longitude) == (31.225, 121.445)
    text = html.unescape(dispatcher.get(f"/deliveries/routes/{route.id}", headers=EN).text)
    assert "静安停车场" in text and "within 120 m" in text


def test_half_a_position_or_a_bad_radius_is_refused_in_words(login):
    dispatcher = login("supervisor")
    response = new_route(dispatcher, parking_latitude="31.2250", parking_radius_m="5")
    text = html.unescape(response.get_data(as_text=True))
    assert "Give both latitude and longitude, or neither." in text
    assert "Between 20 and 2000 metres." in text
    assert db.session.scalar(select(Route).where(Route.name == "静安 3 号线")) is None
    # Without a place, the route is made and says the day closes without a GPS check.
    assert new_route(dispatcher).status_code == 302
    route = db.session.scalar(select(Route).where(Route.name == "静安 3 号线"))
    assert not route.has_parking_place
    text = html.unescape(dispatcher.get(f"/deliveries/routes/{route.id}", headers=EN).text)
    assert "without a GPS check" in text

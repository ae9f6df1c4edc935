"""What the database cannot hold: a number beyond its INTEGER ids is no id."""

from __future__ import annotations

from tests.conftest import API_KEY
from tests.helpers import make_student

KEY = {"x-checkout-key": API_KEY}


def test_hr_summary_of_a_number_beyond_any_id_is_not_found(app, client):
    """PostgreSQL refused `WHERE id = 9999999999` (integer out of range) with a 500; a
    number no INTEGER id can hold is looked up as an identifier or email only."""
    beyond = client.get("/api/integrations/hr/attendance-summary/9999999999", headers=KEY)
    assert beyond.status_code == 404, beyond.get_json()
    assert beyond.get_json()["code"] == "student_not_found"
    with app.app_context():
        make_student(identifier="99999999999", email="long@x.io")
    found = client.get("/api/integrations/hr/attendance-summary/99999999999", headers=KEY)
    assert found.status_code == 200, found.get_json()
    assert found.get_json()["student_email"] == "long@x.io"

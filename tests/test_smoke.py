from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.factories import auth, make_customer, make_key, make_store, purchase_body


def test_purchase_earns_points(client: TestClient, session: Session) -> None:
    make_store(session)
    customer = make_customer(session)
    key = make_key(session)
    response = client.post("/v1/transactions", json=purchase_body(customer.id, 250_000), headers=auth(key))
    assert response.status_code == 201, response.text
    assert response.json()["points_earned"] == 20
    assert response.json()["balance"]["available"] == 20

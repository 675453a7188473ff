"""The OpenAPI schema says what the API does: paginated pages, the errors, the parameters' bounds."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db

OPENAPI_JSON = "application/vnd.oai.openapi+json"


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def schema(api):
    return api.get("/api/schema/", HTTP_ACCEPT=OPENAPI_JSON).json()


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def query_parameter(schema, path, name, method="get"):
    parameters = schema["paths"][path][method].get("parameters", [])
    return next(p for p in parameters if p["name"] == name and p["in"] == "query")["schema"]


def resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def response_schema(schema, path, method, code):
    return resolve(
        schema, schema["paths"][path][method]["responses"][code]["content"]["application/json"]["schema"]
    )


def test_the_ratings_list_is_documented_as_the_page_it_returns(schema):
    page = response_schema(schema, "/api/ratings/", "get", "200")
    assert page["type"] == "object" and {"count", "next", "previous", "results"} <= set(page["properties"])
    assert query_parameter(schema, "/api/ratings/", "page") == {"type": "integer", "minimum": 1}


def test_every_operation_documents_rate_limiting_and_refusals(schema):
    # Session authentication comes first, so a missing or wrong token is a 403 too, never a 401.
    for path, method, operation in operations(schema):
        responses = operation["responses"]
        assert "429" in responses, f"{method} {path}"
        if operation.get("security"):
            assert "403" in responses and "401" not in responses, f"{method} {path}"


def test_operations_that_take_input_document_400_and_those_with_an_id_document_404(schema):
    for path, method, operation in operations(schema):
        if operation.get("parameters") and any(p["in"] == "query" for p in operation["parameters"]):
            assert "400" in operation["responses"], f"{method} {path}"
        if "requestBody" in operation:
            assert "400" in operation["responses"], f"{method} {path}"
        if "{" in path:
            assert "404" in operation["responses"], f"{method} {path}"


def test_permission_refusals_and_conflicts_are_documented(schema):
    paths = schema["paths"]
    assert "403" in paths["/api/training/runs/"]["get"]["responses"]
    assert "403" in paths["/api/comparisons/next/"]["get"]["responses"]
    for path in [
        "/api/training/runs/",
        "/api/models/{id}/promote/",
        "/api/models/{id}/retire/",
        "/api/models/rollback/",
        "/api/experiments/",
        "/api/experiments/{id}/stop/",
        "/api/comparisons/",
    ]:
        assert "409" in paths[path]["post"]["responses"], path
    assert "409" in paths["/api/models/{id}/off-policy/"]["get"]["responses"]
    error = response_schema(schema, "/api/models/rollback/", "post", "409")
    assert error["required"] == ["detail"]


def test_a_validation_error_is_documented_as_messages_by_field(schema):
    error = response_schema(schema, "/api/movies/", "get", "400")
    assert error["type"] == "object" and "additionalProperties" in error


def test_parameter_bounds_are_in_the_schema(schema):
    assert query_parameter(schema, "/api/recommendations/", "k") == {
        "type": "integer",
        "minimum": 1,
        "maximum": 100,
        "default": 20,
    }
    assert query_parameter(schema, "/api/movies/{movie_id}/similar/", "k")["maximum"] == 50
    for name in ["year_min", "year_max"]:
        bounds = query_parameter(schema, "/api/movies/", name)
        assert (bounds["minimum"], bounds["maximum"]) == (1870, 2100)
    assert query_parameter(schema, "/api/movies/", "min_ratings")["minimum"] == 0
    assert query_parameter(schema, "/api/movies/", "page") == {"type": "integer", "minimum": 1}
    page_size = query_parameter(schema, "/api/movies/", "page_size")
    assert (page_size["minimum"], page_size["maximum"]) == (1, 200)
    assert query_parameter(schema, "/api/recommendations/", "user")["minimum"] == 1


@pytest.mark.parametrize(
    "query, field",
    [
        ("page_size=false", "page_size"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
        ("page_size=", "page_size"),
        ("page=0", "page"),
        ("page=abc", "page"),
        ("min_ratings=", "min_ratings"),
        ("year_min=", "year_min"),
        ("year_max=2101", "year_max"),
    ],
)
def test_a_wrong_or_empty_number_in_the_movie_list_is_a_400_naming_it(api, catalogue, query, field):
    response = api.get(f"/api/movies/?{query}")
    assert response.status_code == 400, response.content
    assert field in response.json()
    assert all(isinstance(message, str) for message in response.json()[field])


def test_a_page_after_the_last_is_a_404(api, catalogue):
    assert api.get("/api/movies/?page=99").status_code == 404


def test_the_ratings_list_checks_its_page_size_too(api, alice):
    api.force_authenticate(alice)
    response = api.get("/api/ratings/?page_size=false")
    assert response.status_code == 400 and "page_size" in response.json()
    assert api.get("/api/ratings/?page_size=5").json()["count"] == 0


@pytest.mark.parametrize("path", ["/api/recommendations/?k=", "/api/movies/1/similar/?k="])
def test_an_empty_k_is_a_400_naming_it(api, alice, catalogue, path):
    api.force_authenticate(alice)
    response = api.get(path)
    assert response.status_code == 400 and "k" in response.json()


def test_an_api_url_no_route_matches_is_a_json_404_and_a_page_stays_html(api):
    response = api.get("/api/movies/abc/")
    assert response.status_code == 404 and response.json() == {"detail": "Not found."}
    assert response.headers["Content-Type"] == "application/json"
    assert "text/html" in api.get("/no-such-page/").headers["Content-Type"]


def test_an_id_larger_than_any_column_holds_is_a_404_not_a_database_error(api, alice, catalogue):
    api.force_authenticate(alice)
    assert api.get("/api/movies/2147483648/").status_code == 404
    assert api.put("/api/ratings/214316999481890233647104/", {"rating": 4}, format="json").status_code == 404
    assert api.get("/api/movies/2147483647/").status_code == 404  # the largest id still reaches the view
    response = api.post("/api/ratings/", {"movie": 2**31, "rating": 4}, format="json")
    assert response.status_code == 400 and "movie" in response.json()

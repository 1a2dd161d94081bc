"""moto's server keeps connections alive (stack/moto_http.py): a second request on a connection is
answered on it, whatever the first left unread, and a chunked request is still served."""

import http.client
import json

import pytest

from tidings_local.stack.moto_http import MotoHTTPServer

pytestmark = pytest.mark.integration

LIST_TABLES = {
    "Content-Type": "application/x-amz-json-1.0",
    "X-Amz-Target": "DynamoDB_20120810.ListTables",
    "Authorization": (
        "AWS4-HMAC-SHA256 Credential=testing/20261201/us-east-1/dynamodb/aws4_request, "
        "SignedHeaders=host, Signature=0"
    ),
}

#: S3's ListBuckets: a GET, sent with a body no one reads.
LIST_BUCKETS = {"Authorization": LIST_TABLES["Authorization"].replace("/dynamodb/", "/s3/")}


@pytest.fixture
def server():
    moto = MotoHTTPServer("127.0.0.1", 0).start()
    yield moto
    moto.stop()


def test_requests_on_one_connection_are_answered_on_it(server):
    # Given one connection to moto
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    answers = []
    sockets = set()
    # When three requests go over it, one of them with a body moto does not read (a GET with a body)
    for method, body in (("POST", b"{}"), ("GET", b"ignored body"), ("POST", b"{}")):
        headers = LIST_TABLES if method == "POST" else LIST_BUCKETS
        connection.request(method, "/", body=body, headers=headers)
        response = connection.getresponse()
        answers.append((response.status, response.getheader("Connection"), response.read()))
        sockets.add(id(connection.sock))
    connection.close()

    # Then each was answered, none closed the connection, and it was the same connection throughout
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert [closing for _, closing, _ in answers] == [None, None, None]
    assert "TableNames" in json.loads(answers[0][2])
    assert "TableNames" in json.loads(answers[2][2])
    assert b"ListAllMyBucketsResult" in answers[1][2]
    assert len(sockets) == 1


def test_a_chunked_request_is_served_and_the_connection_closed(server):
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("POST", "/", body=iter([b"{", b"}"]), headers=LIST_TABLES, encode_chunked=True)
    response = connection.getresponse()

    assert response.status == 200
    assert "TableNames" in json.loads(response.read())
    assert response.getheader("Connection") == "close"
    connection.close()

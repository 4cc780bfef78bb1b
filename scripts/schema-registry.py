#!/usr/bin/env python3
"""Minimal in-memory stand-in for a Confluent-compatible Schema Registry.

TEST STAND-IN ONLY. NOT FOR PRODUCTION.

It exists so that Reactor's README, demo, tests and CI can run against a real
HTTP schema registry on a machine where no Confluent-compatible registry can
be installed. It keeps everything in memory (nothing survives a restart),
has no authentication, does not check compatibility between versions, and
implements only the subset of the REST API that serializer/deserializer
clients call. Users of Reactor point it at a real registry: Confluent Schema
Registry, Karapace, Redpanda's built-in registry or Apicurio Registry (in its
Confluent-compatible mode).

Python 3 standard library only. Started by scripts/services-start; can also
be run by hand:

    python3 scripts/schema-registry.py --port 18081 [--host 127.0.0.1] [--access-log]
        [--register SUBJECT=FILE ...]   (Avro schemas registered before it listens)

Endpoints (query strings such as ?deleted=true or ?normalize=true are ignored):
    POST   /subjects/{subject}/versions              register -> {"id": N}
    POST   /subjects/{subject}                       look up  -> {"subject","id","version","schema"}
    GET    /schemas/ids/{id}                         {"schema", ["schemaType"], ["references"]}
    GET    /schemas/ids/{id}/schema                  the raw schema text
    GET    /schemas/ids/{id}/versions                [{"subject","version"}]
    GET    /schemas/ids/{id}/subjects                ["subject", ...]
    GET    /schemas/types                            ["AVRO","JSON","PROTOBUF"]
    GET    /subjects                                 ["subject", ...]
    GET    /subjects/{subject}/versions              [1, 2, ...]
    GET    /subjects/{subject}/versions/{v|latest}   {"subject","id","version","schema", ...}
    GET    /subjects/{subject}/versions/{v}/schema   the raw schema text
    DELETE /subjects/{subject}                       [versions deleted]
    DELETE /subjects/{subject}/versions/{v|latest}   version deleted
    GET    /config, GET /config/{subject}            {"compatibilityLevel": "BACKWARD"}
    PUT    /config, PUT /config/{subject}            {"compatibility": "..."} (stored, not enforced)
    POST   /compatibility/subjects/{s}/versions/{v}  {"is_compatible": true} (always)
    GET    /                                         {}
Anything else answers 404 with a JSON error body.

Like Confluent's registry, the same schema (same type, same text after JSON
normalisation when the text parses as JSON, same references) gets the same
global id under every subject, and registering a schema that a subject
already has returns the existing id without adding a version.
"""

import base64
import argparse
import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
SCHEMA_TYPES = ("AVRO", "JSON", "PROTOBUF")


class ApiError(Exception):
    def __init__(self, status, error_code, message):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def subject_not_found(subject):
    return ApiError(404, 40401, "Subject '%s' not found." % subject)


def version_not_found(version):
    return ApiError(404, 40402, "Version %s not found." % version)


def schema_not_found():
    return ApiError(404, 40403, "Schema not found")


class Registry:
    """All state, guarded by one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.next_id = 1
        self.schemas = {}  # id -> {"schema", "schemaType", "references"}
        self.ids_by_key = {}  # canonical key -> id
        self.subjects = {}  # subject -> list of {"version", "id"} (ascending versions)
        self.next_version = {}  # subject -> next version number (never reused)
        self.global_compat = "BACKWARD"
        self.subject_compat = {}

    @staticmethod
    def normalise(schema_type, text):
        """(stored text, identity text) for a schema string."""
        try:
            parsed = json.loads(text)
        except (ValueError, TypeError):
            if schema_type in ("AVRO", "JSON"):
                raise ApiError(422, 42201, "Invalid schema: not valid JSON")
            return text, text
        stored = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
        identity = json.dumps(parsed, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
        return stored, identity

    @staticmethod
    def parse_request(body):
        if not isinstance(body, dict):
            raise ApiError(422, 42201, "Request body must be a JSON object")
        text = body.get("schema")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(422, 42201, "Empty schema")
        schema_type = body.get("schemaType") or "AVRO"
        if not isinstance(schema_type, str) or schema_type.upper() not in SCHEMA_TYPES:
            raise ApiError(422, 42201, "Invalid schema type %r" % (schema_type,))
        schema_type = schema_type.upper()
        references = body.get("references") or []
        if not isinstance(references, list):
            raise ApiError(422, 42201, "references must be a list")
        return text, schema_type, references

    def key_for(self, text, schema_type, references):
        stored, identity = self.normalise(schema_type, text)
        ref_key = json.dumps(references, sort_keys=True, separators=(",", ":"))
        return stored, "%s\x00%s\x00%s" % (schema_type, identity, ref_key)

    def register(self, subject, body):
        text, schema_type, references = self.parse_request(body)
        with self.lock:
            stored, key = self.key_for(text, schema_type, references)
            schema_id = self.ids_by_key.get(key)
            if schema_id is None:
                schema_id = self.next_id
                self.next_id += 1
                self.ids_by_key[key] = schema_id
                self.schemas[schema_id] = {
                    "schema": stored,
                    "schemaType": schema_type,
                    "references": references,
                }
            versions = self.subjects.setdefault(subject, [])
            if not any(v["id"] == schema_id for v in versions):
                version = self.next_version.get(subject, 1)
                self.next_version[subject] = version + 1
                versions.append({"version": version, "id": schema_id})
            return {"id": schema_id}

    def lookup(self, subject, body):
        text, schema_type, references = self.parse_request(body)
        with self.lock:
            if subject not in self.subjects:
                raise subject_not_found(subject)
            _, key = self.key_for(text, schema_type, references)
            schema_id = self.ids_by_key.get(key)
            for v in self.subjects[subject]:
                if v["id"] == schema_id:
                    return self.version_doc(subject, v)
            raise schema_not_found()

    def schema_doc(self, schema_id):
        entry = self.schemas[schema_id]
        doc = {"schema": entry["schema"]}
        if entry["schemaType"] != "AVRO":
            doc["schemaType"] = entry["schemaType"]
        if entry["references"]:
            doc["references"] = entry["references"]
        return doc

    def version_doc(self, subject, v):
        doc = {"subject": subject, "version": v["version"], "id": v["id"]}
        doc.update(self.schema_doc(v["id"]))
        return doc

    def get_schema(self, schema_id):
        with self.lock:
            if schema_id not in self.schemas:
                raise schema_not_found()
            return self.schema_doc(schema_id)

    def id_versions(self, schema_id):
        with self.lock:
            if schema_id not in self.schemas:
                raise schema_not_found()
            return [
                {"subject": s, "version": v["version"]}
                for s in sorted(self.subjects)
                for v in self.subjects[s]
                if v["id"] == schema_id
            ]

    def subject_names(self):
        with self.lock:
            return sorted(s for s, vs in self.subjects.items() if vs)

    def versions(self, subject):
        with self.lock:
            if not self.subjects.get(subject):
                raise subject_not_found(subject)
            return [v["version"] for v in self.subjects[subject]]

    def find_version(self, subject, version):
        """Caller holds the lock."""
        versions = self.subjects.get(subject)
        if not versions:
            raise subject_not_found(subject)
        if version in ("latest", "-1"):
            return versions[-1]
        try:
            number = int(version)
        except ValueError:
            raise ApiError(
                422,
                42202,
                "The specified version '%s' is not a valid version id. Allowed values are "
                "between [1, 2^31-1] and the string \"latest\"" % version,
            )
        if number < 1:
            raise ApiError(422, 42202, "The specified version '%s' is not a valid version id." % version)
        for v in versions:
            if v["version"] == number:
                return v
        raise version_not_found(version)

    def get_version(self, subject, version):
        with self.lock:
            return self.version_doc(subject, self.find_version(subject, version))

    def delete_subject(self, subject):
        with self.lock:
            versions = self.subjects.get(subject)
            if not versions:
                raise subject_not_found(subject)
            deleted = [v["version"] for v in versions]
            del self.subjects[subject]
            self.subject_compat.pop(subject, None)
            return deleted

    def delete_version(self, subject, version):
        with self.lock:
            v = self.find_version(subject, version)
            self.subjects[subject].remove(v)
            return v["version"]

    def get_config(self, subject=None):
        with self.lock:
            level = self.subject_compat.get(subject, self.global_compat) if subject else self.global_compat
            return {"compatibilityLevel": level}

    def set_config(self, subject, body):
        level = body.get("compatibility") if isinstance(body, dict) else None
        allowed = ("NONE", "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE", "FULL",
                   "FULL_TRANSITIVE")
        if not isinstance(level, str) or level.upper() not in allowed:
            raise ApiError(422, 42203, "Invalid compatibility level")
        with self.lock:
            if subject:
                self.subject_compat[subject] = level.upper()
            else:
                self.global_compat = level.upper()
        return {"compatibility": level.upper()}


REGISTRY = Registry()
ACCESS_LOG = False
# "Basic <base64>" every request must carry, or None (--basic-auth).
BASIC_AUTH = None


def parse_id(text):
    try:
        return int(text)
    except ValueError:
        raise schema_not_found()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "reactor-test-schema-registry/1"

    def log_message(self, fmt, *args):  # noqa: N802 (stdlib name)
        if ACCESS_LOG:
            sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))
            sys.stderr.flush()

    def send_json(self, status, doc):
        payload = json.dumps(doc).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_text(self, text):
        payload = text.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, 400, "Unrecognized request body: %s" % exc)

    def handle_any(self):
        try:
            if BASIC_AUTH is not None and self.headers.get("Authorization") != BASIC_AUTH:
                raise ApiError(401, 401, "Unauthorized")
            path = urlsplit(self.path).path
            parts = [unquote(p) for p in path.split("/") if p]
            result = self.route(self.command, parts)
            if isinstance(result, tuple) and result[0] == "text":
                self.send_text(result[1])
            else:
                self.send_json(200, result)
        except ApiError as err:
            self.send_json(err.status, {"error_code": err.error_code, "message": err.message})
        except Exception as exc:  # keep serving; report as a registry-style 500
            self.send_json(500, {"error_code": 50001, "message": "Internal error: %r" % (exc,)})

    do_GET = do_POST = do_PUT = do_DELETE = handle_any  # noqa: N815

    def route(self, method, parts):
        r = REGISTRY
        n = len(parts)
        # Read the body of every request that has one, so keep-alive stays in sync.
        body = self.read_body() if method in ("POST", "PUT") else None
        if n == 0 and method == "GET":
            return {}
        head = parts[0]
        if head == "subjects":
            if n == 1 and method == "GET":
                return r.subject_names()
            subject = parts[1] if n > 1 else None
            if n == 2 and method == "POST":
                return r.lookup(subject, body)
            if n == 2 and method == "DELETE":
                return r.delete_subject(subject)
            if n == 3 and parts[2] == "versions":
                if method == "POST":
                    return r.register(subject, body)
                if method == "GET":
                    return r.versions(subject)
            if n == 4 and parts[2] == "versions":
                if method == "GET":
                    return r.get_version(subject, parts[3])
                if method == "DELETE":
                    return r.delete_version(subject, parts[3])
            if n == 5 and parts[2] == "versions" and parts[4] == "schema" and method == "GET":
                return ("text", r.get_version(subject, parts[3])["schema"])
        elif head == "schemas":
            if n == 2 and parts[1] == "types" and method == "GET":
                return list(SCHEMA_TYPES)
            if n >= 3 and parts[1] == "ids" and method == "GET":
                schema_id = parse_id(parts[2])
                if n == 3:
                    return r.get_schema(schema_id)
                if n == 4 and parts[3] == "versions":
                    return r.id_versions(schema_id)
                if n == 4 and parts[3] == "subjects":
                    return sorted({v["subject"] for v in r.id_versions(schema_id)})
                if n == 4 and parts[3] == "schema":
                    return ("text", r.get_schema(schema_id)["schema"])
        elif head == "config":
            subject = parts[1] if n == 2 else None
            if n <= 2 and method == "GET":
                return r.get_config(subject)
            if n <= 2 and method == "PUT":
                return r.set_config(subject, body)
        elif head == "compatibility":
            if n == 5 and parts[1] == "subjects" and parts[3] == "versions" and method == "POST":
                r.parse_request(body)
                if parts[4] not in ("latest", "-1"):
                    with r.lock:
                        r.find_version(parts[2], parts[4])
                return {"is_compatible": True}
        raise ApiError(404, 404, "HTTP 404 Not Found: %s %s" % (method, self.path))


def main():
    global ACCESS_LOG, BASIC_AUTH
    parser = argparse.ArgumentParser(description="In-memory Schema Registry stand-in for tests (not for production)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SCHEMA_REGISTRY_PORT", "18081")))
    parser.add_argument("--access-log", action="store_true", help="log each request to stderr")
    parser.add_argument(
        "--basic-auth",
        metavar="USER:PASSWORD",
        help="require HTTP basic authentication with these credentials (401 otherwise)",
    )
    parser.add_argument(
        "--register",
        action="append",
        default=[],
        metavar="SUBJECT=FILE",
        help="register the Avro schema in FILE under SUBJECT before listening (ids from 1, in order)",
    )
    args = parser.parse_args()
    ACCESS_LOG = args.access_log
    for item in args.register:
        subject, sep, path = item.partition("=")
        if not sep or not subject or not path:
            parser.error("--register takes SUBJECT=FILE, got %r" % item)
        with open(path, encoding="utf-8") as f:
            REGISTRY.register(subject, {"schema": f.read()})
    if args.basic_auth:
        BASIC_AUTH = "Basic " + base64.b64encode(args.basic_auth.encode("utf-8")).decode("ascii")

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True

    def stop(signum, _frame):
        sys.stderr.write("schema-registry: signal %d, shutting down\n" % signum)
        sys.stderr.flush()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sys.stderr.write(
        "schema-registry (test stand-in, in-memory) listening on http://%s:%d\n" % (args.host, args.port)
    )
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()

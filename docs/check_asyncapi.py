#!/usr/bin/env python3
"""Checks docs/asyncapi.yaml, the AsyncAPI 3 description of the CSS wire contract.

What it checks:
  * the YAML loads (duplicate keys are an error: PyYAML would silently keep the last);
  * AsyncAPI 3 structure basics: `asyncapi: 3.0.0`, `info`, `servers`, `channels`,
    `operations` (actions, channels and messages that exist and belong together,
    replies), channel parameters matching `{...}` in addresses, AMQP bindings;
  * every `$ref` in the document resolves (local JSON pointers only);
  * every component schema and every message's payload and headers schema is a
    valid JSON Schema (Draft 7 meta-schema, after inlining `$ref`s);
  * every message has at least one example, and every example's payload and headers
    validate against the message's schemas (with format checks);
  * the fixed names of CONTRACT.md (exchanges, commands, events) are all present;
  * when the Swift sources are next to this file (../Shared/Model), the error codes,
    command names, event types and enumerations in the document match them.

Exits 0 and prints one summary line on success; exits 1 listing every problem otherwise.

Usage: python3 docs/check_asyncapi.py [path/to/asyncapi.yaml]
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path

try:
    import yaml
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError
except ImportError as e:  # pragma: no cover
    print(f"asyncapi: missing Python package: {e.name} (pip install pyyaml jsonschema)", file=sys.stderr)
    sys.exit(2)

HERE = Path(__file__).resolve().parent
DEFAULT_DOC = HERE / "asyncapi.yaml"
SWIFT_MODEL = HERE.parent / "Shared" / "Model"

# The fixed names of CONTRACT.md: never renamed or removed.
FIXED_EXCHANGES = {"css.commands": "topic", "css.events": "topic", "css.escalations": "topic", "css.dead": "fanout"}
FIXED_COMMANDS = {
    "customer.onboard", "customer.contact.availability", "ticket.submit", "ticket.transition",
    "ticket.reclassify.request", "ticket.reclassify.decide", "ticket.get", "oncall.schedule.set", "escalation.ack",
}
FIXED_EVENTS = {
    "ticket.received", "ticket.classified", "ticket.reclassified", "ticket.transitioned", "sla.started",
    "sla.rescheduled", "sla.warning", "sla.breached", "sla.stopped", "escalation.sent", "escalation.acknowledged",
    "problem.opened", "quota.warning", "command.rejected",
}
FIXED_ESCALATION_KEYS = {"oncall.{team}.{priority}", "customer.{customerId}"}

TOP_LEVEL = {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations", "components"}
CHANNEL_FIELDS = {"address", "messages", "title", "summary", "description", "servers", "parameters", "tags",
                  "externalDocs", "bindings"}
OPERATION_FIELDS = {"action", "channel", "title", "summary", "description", "security", "tags", "externalDocs",
                    "bindings", "traits", "messages", "reply"}
MESSAGE_FIELDS = {"headers", "payload", "correlationId", "contentType", "name", "title", "summary", "description",
                  "tags", "externalDocs", "bindings", "examples", "traits"}
COMPONENT_SECTIONS = {"schemas", "servers", "channels", "operations", "messages", "securitySchemes", "serverVariables",
                      "parameters", "correlationIds", "replies", "replyAddresses", "externalDocs", "tags",
                      "operationTraits", "messageTraits", "serverBindings", "channelBindings", "operationBindings",
                      "messageBindings"}


class Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, what: str) -> None:
        self.items.append(f"{where}: {what}")


# ---------------------------------------------------------------- loading

class UniqueKeyLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    mapping = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, f"duplicate key {key!r}", key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load(path: Path):
    try:
        with path.open(encoding="utf-8") as f:
            return yaml.load(f, Loader=UniqueKeyLoader)
    except FileNotFoundError:
        fail([f"{path}: no such file"])
    except yaml.YAMLError as e:
        fail([f"{path}: not valid YAML: {e}"])


def fail(problems: list[str]) -> None:
    print(f"asyncapi: {len(problems)} problem(s) in the AsyncAPI document:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- references

def pointer_get(doc, ref: str):
    """The node `ref` ('#/a/b') points at, or raises KeyError."""
    if not ref.startswith("#"):
        raise KeyError(f"only local references are used in this document, got {ref!r}")
    node = doc
    path = ref[1:]
    if path in ("", "/"):
        return node
    if not path.startswith("/"):
        raise KeyError(f"malformed JSON pointer {ref!r}")
    for raw in path[1:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise KeyError(f"{ref!r} does not resolve (no {part!r})")
    return node


def walk_refs(node, where: str):
    """Yields (location, ref) for every `$ref` in the tree."""
    if isinstance(node, dict):
        if "$ref" in node:
            yield where, node["$ref"]
        for k, v in node.items():
            if k == "examples":  # example data may legitimately contain anything
                continue
            yield from walk_refs(v, f"{where}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk_refs(v, f"{where}/{i}")


def deref(doc, node, stack=()):
    """A copy of `node` with every `$ref` replaced by what it points at (no cycles allowed)."""
    if isinstance(node, dict):
        if "$ref" in node:
            ref = node["$ref"]
            if ref in stack:
                raise ValueError(f"reference cycle: {' -> '.join(stack + (ref,))}")
            target = deref(doc, pointer_get(doc, ref), stack + (ref,))
            # Draft 7 ignores keywords next to $ref; only annotations are allowed there.
            return target
        return {k: (v if k == "examples" else deref(doc, v, stack)) for k, v in node.items()}
    if isinstance(node, list):
        return [deref(doc, v, stack) for v in node]
    return node


def resolve(doc, node):
    """Follows a chain of Reference Objects to the object itself."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        if ref in seen:
            raise ValueError(f"reference cycle at {ref}")
        seen.add(ref)
        node = pointer_get(doc, ref)
    return node


# ---------------------------------------------------------------- checks

def check_refs(doc, p: Problems) -> None:
    for where, ref in walk_refs(doc, "#"):
        if not isinstance(ref, str):
            p.add(where, "$ref must be a string")
            continue
        try:
            pointer_get(doc, ref)
        except KeyError as e:
            p.add(where, str(e))


def check_top(doc, p: Problems) -> None:
    if not isinstance(doc, dict):
        p.add("document", "must be a mapping")
        return
    if doc.get("asyncapi") != "3.0.0":
        p.add("asyncapi", f"must be the string '3.0.0', got {doc.get('asyncapi')!r}")
    for k in doc:
        if k not in TOP_LEVEL and not str(k).startswith("x-"):
            p.add(k, "unknown top-level field for AsyncAPI 3.0.0")
    info = doc.get("info")
    if not isinstance(info, dict):
        p.add("info", "required mapping")
    else:
        for k in ("title", "version"):
            if not isinstance(info.get(k), str) or not info.get(k):
                p.add(f"info.{k}", "required non-empty string")
    for section in ("channels", "operations", "components"):
        if not isinstance(doc.get(section), dict):
            p.add(section, "required mapping")
    comps = doc.get("components") or {}
    for k in comps:
        if k not in COMPONENT_SECTIONS:
            p.add(f"components.{k}", "unknown components section")
        for name in comps.get(k) or {}:
            if not re.fullmatch(r"[A-Za-z0-9.\-_]+", name):
                p.add(f"components.{k}.{name}", "component keys must match ^[a-zA-Z0-9.\\-_]+$")


def check_servers(doc, p: Problems) -> None:
    servers = doc.get("servers")
    if not isinstance(servers, dict) or not servers:
        p.add("servers", "at least one server is required to document the broker")
        return
    for name, raw in servers.items():
        where = f"servers.{name}"
        s = resolve(doc, raw)
        for k in ("host", "protocol"):
            if not isinstance(s.get(k), str):
                p.add(where, f"missing {k}")
        if s.get("protocol") == "amqp" and s.get("protocolVersion") != "0-9-1":
            p.add(where, "protocolVersion must be 0-9-1 for the RabbitMQ broker")
        used = set(re.findall(r"{([^}]+)}", f"{s.get('host', '')}{s.get('pathname', '')}"))
        declared = set((s.get("variables") or {}).keys())
        for v in used - declared:
            p.add(where, f"variable {{{v}}} is used but not declared")
        for v in declared - used:
            p.add(where, f"variable {v} is declared but not used in host or pathname")
        if "CSS_AMQP_URL" not in (s.get("description") or ""):
            p.add(where, "the description must explain CSS_AMQP_URL")


def amqp_binding(doc, channel) -> dict | None:
    b = channel.get("bindings")
    if b is None:
        return None
    b = resolve(doc, b)
    return b.get("amqp") if isinstance(b, dict) else None


def check_channels(doc, p: Problems) -> None:
    comps_messages = (doc.get("components") or {}).get("messages") or {}
    used_component_messages = set()
    for cid, raw in (doc.get("channels") or {}).items():
        where = f"channels.{cid}"
        ch = resolve(doc, raw)
        for k in ch:
            if k not in CHANNEL_FIELDS and not str(k).startswith("x-"):
                p.add(where, f"unknown channel field {k!r}")
        if "address" not in ch:
            p.add(where, "address is required here (a string, or null for a dynamic address)")
        address = ch.get("address")
        if address is not None and not isinstance(address, str):
            p.add(where, "address must be a string or null")
        used = set(re.findall(r"{([^}]+)}", address or ""))
        declared = set((ch.get("parameters") or {}).keys())
        if used != declared:
            p.add(where, f"address parameters {sorted(used)} do not match declared parameters {sorted(declared)}")
        msgs = ch.get("messages") or {}
        if not msgs:
            p.add(where, "a channel must list the messages it carries")
        for mid, m in msgs.items():
            ref = m.get("$ref") if isinstance(m, dict) else None
            if not ref or not ref.startswith("#/components/messages/"):
                p.add(f"{where}.messages.{mid}", "must be a $ref to #/components/messages/...")
                continue
            used_component_messages.add(ref.rsplit("/", 1)[1])
        amqp = amqp_binding(doc, ch)
        if not isinstance(amqp, dict):
            p.add(where, "missing bindings.amqp")
            continue
        kind = amqp.get("is")
        if kind == "routingKey":
            ex = amqp.get("exchange") or {}
            if "name" not in ex or ex.get("type") not in ("topic", "direct", "fanout", "default", "headers"):
                p.add(where, "bindings.amqp.exchange needs a name and a type")
            if ex.get("name") and ex.get("durable") is not True:
                p.add(where, "contract exchanges are durable")
        elif kind == "queue":
            q = amqp.get("queue") or {}
            if not q.get("name"):
                p.add(where, "bindings.amqp.queue needs a name")
            elif q.get("name") != address:
                p.add(where, "a queue channel's address must be the queue name")
        else:
            p.add(where, f"bindings.amqp.is must be routingKey or queue, got {kind!r}")
    for name in comps_messages:
        if name not in used_component_messages:
            p.add(f"components.messages.{name}", "is not carried by any channel")


def check_operations(doc, p: Problems) -> tuple[int, set[str]]:
    channels = doc.get("channels") or {}
    ops = doc.get("operations") or {}
    covered = set()
    for oid, raw in ops.items():
        where = f"operations.{oid}"
        op = resolve(doc, raw)
        for k in op:
            if k not in OPERATION_FIELDS and not str(k).startswith("x-"):
                p.add(where, f"unknown operation field {k!r}")
        if op.get("action") not in ("send", "receive"):
            p.add(where, f"action must be send or receive, got {op.get('action')!r}")
        cref = (op.get("channel") or {}).get("$ref", "")
        m = re.fullmatch(r"#/channels/([^/]+)", cref)
        if not m or m.group(1) not in channels:
            p.add(where, f"channel must be a $ref to an existing #/channels/<id>, got {cref!r}")
            continue
        cid = m.group(1)
        covered.add(cid)
        request_headers = []
        msgs = op.get("messages")
        if not msgs:
            p.add(where, "must list its messages")
        for i, mref in enumerate(msgs or []):
            ref = (mref or {}).get("$ref", "")
            mm = re.fullmatch(r"#/channels/([^/]+)/messages/([^/]+)", ref)
            if not mm or mm.group(1) != cid or mm.group(2) not in (resolve(doc, channels[cid]).get("messages") or {}):
                p.add(f"{where}.messages[{i}]", f"must reference a message of its own channel {cid}, got {ref!r}")
                continue
            msg = resolve(doc, pointer_get(doc, ref))
            request_headers.append(resolve(doc, msg.get("headers") or {}))
        reply = op.get("reply")
        if reply is None:
            continue
        reply = resolve(doc, reply)
        rref = (reply.get("channel") or {}).get("$ref", "")
        rm = re.fullmatch(r"#/channels/([^/]+)", rref)
        if not rm or rm.group(1) not in channels:
            p.add(f"{where}.reply", f"channel must reference an existing channel, got {rref!r}")
            continue
        rcid = rm.group(1)
        covered.add(rcid)
        if not reply.get("messages"):
            p.add(f"{where}.reply", "must list the reply messages")
        for i, mref in enumerate(reply.get("messages") or []):
            ref = (mref or {}).get("$ref", "")
            mm = re.fullmatch(r"#/channels/([^/]+)/messages/([^/]+)", ref)
            if not mm or mm.group(1) != rcid or mm.group(2) not in (resolve(doc, channels[rcid]).get("messages") or {}):
                p.add(f"{where}.reply.messages[{i}]", f"must reference a message of the reply channel {rcid}, got {ref!r}")
        address = resolve(doc, reply.get("address") or {})
        loc = address.get("location", "")
        if not loc.startswith("$message.header#/"):
            p.add(f"{where}.reply.address", f"location must be $message.header#/..., got {loc!r}")
        else:
            header = loc.split("#/", 1)[1]
            for h in request_headers:
                if header not in (h.get("properties") or {}):
                    p.add(f"{where}.reply.address", f"the request headers schema has no {header!r}")
    return len(ops), covered


def check_messages(doc, p: Problems) -> tuple[int, int, int]:
    default_ct = doc.get("defaultContentType")
    messages = (doc.get("components") or {}).get("messages") or {}
    schemas_ok = examples_ok = 0
    for mid, raw in messages.items():
        where = f"components.messages.{mid}"
        msg = resolve(doc, raw)
        for k in msg:
            if k not in MESSAGE_FIELDS and not str(k).startswith("x-"):
                p.add(where, f"unknown message field {k!r}")
        for k in ("name", "title"):
            if not msg.get(k):
                p.add(where, f"missing {k}")
        if not (msg.get("contentType") or default_ct):
            p.add(where, "no contentType and no defaultContentType")
        if "payload" not in msg:
            p.add(where, "missing payload schema")
            continue
        if not isinstance(msg.get("headers"), dict):
            p.add(where, "missing headers schema (the AMQP properties)")
        validators = {}
        for part in ("payload", "headers"):
            if part not in msg:
                continue
            try:
                schema = deref(doc, msg[part])
                Draft7Validator.check_schema(schema)
            except (KeyError, ValueError) as e:
                p.add(f"{where}.{part}", str(e))
                continue
            except SchemaError as e:
                p.add(f"{where}.{part}", f"not a valid JSON Schema: {e.message} at {list(e.path)}")
                continue
            validators[part] = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
        if "payload" in validators:
            schemas_ok += 1
        corr = msg.get("correlationId")
        if corr is not None:
            loc = resolve(doc, corr).get("location", "")
            header = loc.split("#/", 1)[1] if loc.startswith("$message.header#/") else None
            hs = resolve(doc, msg.get("headers") or {})
            if header is None or header not in (hs.get("properties") or {}):
                p.add(f"{where}.correlationId", f"location {loc!r} is not a property of the headers schema")
        examples = msg.get("examples")
        if not isinstance(examples, list) or not examples:
            p.add(where, "needs at least one example")
            continue
        for i, ex in enumerate(examples):
            ew = f"{where}.examples[{i}]" + (f" ({ex.get('name')})" if isinstance(ex, dict) and ex.get("name") else "")
            if not isinstance(ex, dict) or "payload" not in ex:
                p.add(ew, "an example needs a payload")
                continue
            if "headers" not in ex:
                p.add(ew, "an example needs headers (the AMQP properties)")
            bad = False
            for part in ("payload", "headers"):
                if part in ex and part in validators:
                    for err in sorted(validators[part].iter_errors(ex[part]), key=lambda e: list(e.path)):
                        while err.context:  # anyOf/oneOf: name the reason found deepest in the data
                            err = max(err.context, key=lambda e: len(e.absolute_path))
                        path = "/".join(str(x) for x in err.absolute_path) or "(root)"
                        p.add(ew, f"{part} does not match its schema at {path}: {err.message}")
                        bad = True
            ct = ex.get("headers", {}).get("content_type")
            declared = msg.get("contentType") or default_ct
            if ct is not None and declared != "application/octet-stream" and ct.split(";")[0].strip() != declared:
                p.add(ew, f"content_type {ct!r} differs from the message's contentType {declared!r}")
            if not bad:
                examples_ok += 1
    return len(messages), schemas_ok, examples_ok


def check_component_schemas(doc, p: Problems) -> int:
    n = 0
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        try:
            Draft7Validator.check_schema(deref(doc, schema))
            n += 1
        except (KeyError, ValueError) as e:
            p.add(f"components.schemas.{name}", str(e))
        except SchemaError as e:
            p.add(f"components.schemas.{name}", f"not a valid JSON Schema: {e.message} at {list(e.path)}")
    return n


def channel_index(doc):
    """(exchange name, address) -> channel id, for routing-key channels."""
    out = {}
    for cid, raw in (doc.get("channels") or {}).items():
        ch = resolve(doc, raw)
        amqp = amqp_binding(doc, ch) or {}
        if amqp.get("is") == "routingKey":
            ex = amqp.get("exchange") or {}
            out[(ex.get("name"), ch.get("address"))] = (cid, ch, ex)
    return out


def check_contract_names(doc, p: Problems) -> None:
    idx = channel_index(doc)
    exchanges = {ex.get("name"): ex.get("type") for _, _, ex in idx.values()}
    for name, typ in FIXED_EXCHANGES.items():
        if exchanges.get(name) != typ:
            p.add("contract", f"exchange {name} ({typ}) is not documented as such (found {exchanges.get(name)!r})")
    for cmd in FIXED_COMMANDS:
        if ("css.commands", cmd) not in idx:
            p.add("contract", f"fixed command {cmd} has no channel on css.commands")
    for ev in FIXED_EVENTS:
        if ("css.events", ev) not in idx:
            p.add("contract", f"fixed event {ev} has no channel on css.events")
    for key in FIXED_ESCALATION_KEYS:
        if ("css.escalations", key) not in idx:
            p.add("contract", f"escalation routing key {key} has no channel on css.escalations")
    # Commands are sent with a reply; events carry the CloudEvent whose type is the routing key.
    ops = doc.get("operations") or {}
    replied = {(op.get("channel") or {}).get("$ref") for op in ops.values() if op.get("reply")}
    for (exchange, address), (cid, ch, _) in idx.items():
        if exchange == "css.commands" and f"#/channels/{cid}" not in replied:
            p.add(f"channels.{cid}", "a command channel needs a send operation with a reply")
        if exchange != "css.events":
            continue
        for mref in (ch.get("messages") or {}).values():
            msg = resolve(doc, mref)
            if msg.get("contentType") != "application/cloudevents+json":
                p.add(f"channels.{cid}", "event messages are application/cloudevents+json")
            for i, ex in enumerate(msg.get("examples") or []):
                payload = ex.get("payload") if isinstance(ex, dict) else None
                if not isinstance(payload, dict) or payload.get("type") != address:
                    p.add(f"channels.{cid}", f"example {i}: CloudEvent type must equal the routing key {address}")
                elif (ex.get("headers") or {}).get("message_id") != payload.get("id"):
                    p.add(f"channels.{cid}", f"example {i}: message_id must equal the CloudEvent id")


# ---------------------------------------------------------------- drift against the Swift sources

def swift_string_constants(text: str, enum_name: str) -> set[str]:
    m = re.search(r"enum\s+" + re.escape(enum_name) + r"\s*\{(.*?)\n\}", text, re.S)
    return set(re.findall(r'static let \w+\s*=\s*"([^"]+)"', m.group(1))) if m else set()


def swift_string_enums(text: str) -> dict[str, set[str]]:
    out = {}
    for m in re.finditer(r"enum\s+(\w+)\s*:\s*String[^{]*\{(.*?)\n\}", text, re.S):
        values = set()
        for line in m.group(2).splitlines():
            line = line.strip()
            if not line.startswith("case "):
                continue
            for part in line[5:].split(","):
                part = part.strip()
                if not part:
                    continue
                mm = re.fullmatch(r'(\w+)\s*=\s*"([^"]*)"', part)
                values.add(mm.group(2) if mm else part)
        out[m.group(1)] = values
    return out


def check_against_swift(doc, p: Problems) -> bool:
    files = {n: SWIFT_MODEL / n for n in ("CommandError.swift", "Commands.swift", "Messages.swift", "Vocabulary.swift")}
    if not all(f.exists() for f in files.values()):
        return False
    text = {n: f.read_text(encoding="utf-8") for n, f in files.items()}
    schemas = (doc.get("components") or {}).get("schemas") or {}
    documented_codes = set(schemas.get("ErrorCode", {}).get("examples") or [])
    swift_codes = swift_string_constants(text["CommandError.swift"], "ErrorCode")
    runtime = HERE.parent / "Shared" / "Runtime" / "CommandProcessor.swift"
    if runtime.exists():
        swift_codes |= set(re.findall(r'CommandError\(code:\s*"([a-z_]+)"', runtime.read_text(encoding="utf-8")))
    for c in sorted(swift_codes - documented_codes):
        p.add("components.schemas.ErrorCode", f"error code {c!r} is used by the services but not documented")
    for c in sorted(documented_codes - swift_codes):
        p.add("components.schemas.ErrorCode", f"documented error code {c!r} does not exist in the services")
    idx = channel_index(doc)
    for cmd in swift_string_constants(text["Commands.swift"], "CommandName"):
        if ("css.commands", cmd) not in idx:
            p.add("contract", f"command {cmd} is implemented but not documented")
    for ev in swift_string_constants(text["Messages.swift"], "EventType"):
        if ("css.events", ev) not in idx:
            p.add("contract", f"event type {ev} exists in the services but is not documented")
    mapping = {"TicketKind": "TicketKind", "DeploymentEnvironment": "Environment", "Impact": "Impact",
               "Urgency": "Urgency", "Channel": "Channel", "Priority": "Priority", "TicketAction": "TicketAction",
               "TicketStatus": "TicketStatus"}
    enums = swift_string_enums(text["Vocabulary.swift"])
    for swift_name, schema_name in mapping.items():
        documented = set(schemas.get(schema_name, {}).get("enum") or [])
        if swift_name not in enums:
            p.add("swift", f"enum {swift_name} not found in Vocabulary.swift")
        elif enums[swift_name] != documented:
            p.add(f"components.schemas.{schema_name}",
                  f"enum {sorted(documented)} differs from Swift {swift_name} {sorted(enums[swift_name])}")
    return True


# ---------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_DOC
    doc = load(path)
    p = Problems()
    check_top(doc, p)
    if p.items:
        fail(p.items)
    check_refs(doc, p)
    if p.items:  # the remaining checks follow references
        fail(p.items)
    check_servers(doc, p)
    check_channels(doc, p)
    n_ops, covered = check_operations(doc, p)
    n_components = check_component_schemas(doc, p)
    n_messages, n_schemas, n_examples = check_messages(doc, p)
    check_contract_names(doc, p)
    swift = check_against_swift(doc, p)
    if p.items:
        fail(p.items)
    n_channels = len(doc.get("channels") or {})
    print(f"asyncapi: {n_messages} messages, {n_schemas} schemas valid, {n_examples} examples valid "
          f"({n_channels} channels, {n_ops} operations, {n_components} component schemas"
          f"{', matches the Swift sources' if swift else ''})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

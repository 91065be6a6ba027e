#!/usr/bin/env python3
"""Imports a CSV file into a contact-import deployment as one tenant, from the contract alone.

What a client in another language needs, in the order it needs it (docs/asyncapi.yaml says
the same):

* Credentials: a tenant's `<account>.creds` file is an nkey *seed* (a line starting with
  `SU`) under comment lines, not a JWT credentials file; pass the seed as an nkey
  (`nkeys_seed_str` here, `--nkey` to the nats CLI).
* Inbox prefix: replies to a tenant arrive only under `_INBOX_<account>`; with the default
  `_INBOX` every request times out.
* JetStream prefix: with credentials (the secure deployment) the tenant is in a NATS account
  of her own, which reaches her uploads bucket's JetStream requests under `JS.<account>.API`;
  `$JS.API` there reaches no stream.
* Upload: ask `import.upload` for the bucket and object name, put the file in that object
  store bucket.
* Start: publish the `ImportRequest` to `<ns>.v1.<account>.import.<id>.start` through
  JetStream.
* Progress: subscribe to `<ns>.v1.<account>.import.<id>.events`, then read what came before
  through `import.events` (page after page, each from the last page's `until`), until the
  `summary` event. A tenant may create no consumer. Order events by `sequence`; pass over a
  body on the subject that is not an event of the import.
* Replies: every API reply is `{"ok": ...}` or `{"error": {"kind", "message"}}`; the writer
  answers within seconds, so wait 30 s at most.

Prints the summary's status as one JSON object; exits 0 when the import completed, 1 when it
ended failed or cancelled, 2 when the deployment could not be reached.
"""

import argparse
import asyncio
import hashlib
import json
import sys
import uuid

import nats

# The writer answers within seconds; a request nobody may answer (a subject NATS refuses to
# these credentials) gets no reply at all, only this wait.
REPLY_TIMEOUT_SECONDS = 30


def seed_of(creds_path):
    """The nkey seed of a tenant's credentials file (comment lines skipped)."""
    with open(creds_path, encoding="ascii") as creds:
        for line in creds:
            line = line.strip()
            if line.startswith("SU"):
                return line
    raise SystemExit(f"{creds_path} holds no nkey user seed (a line starting with SU)")


class Tenant:
    def __init__(self, connection, namespace, account, reply_timeout, with_credentials):
        self.nc = connection
        self.reply_timeout = reply_timeout
        # With credentials the tenant is in an account of her own, where the services lend
        # her uploads bucket's JetStream requests under JS.<account>.API.
        prefix = f"JS.{account}.API" if with_credentials else "$JS.API"
        self.js = connection.jetstream(prefix=prefix, timeout=reply_timeout)
        self.namespace = namespace
        self.account = account

    def subject(self, *tokens):
        return ".".join([self.namespace.lower(), "v1", self.account, *tokens])

    async def call(self, operation, body):
        reply = await self.nc.request(
            self.subject("api", operation),
            json.dumps(body).encode(),
            timeout=self.reply_timeout,
        )
        answer = json.loads(reply.data)
        if "error" in answer:
            error = answer["error"]
            raise RuntimeError(f"{operation}: {error['kind']}: {error['message']}")
        return answer["ok"]

    async def upload(self, import_id, path):
        target = await self.call("import.upload", {"import_id": import_id})
        with open(path, "rb") as file:
            content = file.read()
        bucket = await self.js.object_store(target["bucket"])
        await bucket.put(target["object"], content)
        return target["object"], hashlib.sha256(content).hexdigest()

    async def start(self, request):
        subject = self.subject("import", request["import_id"], "start")
        await self.js.publish(subject, json.dumps(request).encode())

    async def summary(self, import_id):
        """Follows the import's events until its summary; returns the summary's status."""
        live = await self.nc.subscribe(self.subject("import", import_id, "events"))
        # In place on the server before the stored events are read: none falls between.
        await self.nc.flush()
        last, until, more = None, 0, True
        while more:
            page = await self.call("import.events", {"import_id": import_id, "after": until})
            until, more = page["until"], page["more"]
            for event in page["events"]:
                last, summary = self.take(event, last)
                if summary:
                    await live.unsubscribe()
                    return summary
        async for message in live.messages:
            try:
                event = json.loads(message.data)
                if event["import"]["import_id"] != import_id:
                    continue
            except (ValueError, KeyError, TypeError):
                continue  # not an event of this import: passed over
            last, summary = self.take(event, last)
            if summary:
                await live.unsubscribe()
                return summary
        raise RuntimeError("the events ended before the summary")

    @staticmethod
    def take(event, last):
        """Prints an event not older than the last one taken; returns the new last sequence
        and, for the summary, its status."""
        if event["kind"] == "summary":
            return event["sequence"], event["import"]
        if last is not None and event["sequence"] <= last:
            return last, None
        done = event["import"]
        print(f"{done['status']}: {done['rows_total']} rows", file=sys.stderr)
        return event["sequence"], None


async def run(arguments):
    try:
        connection = await nats.connect(
            arguments.nats,
            nkeys_seed_str=seed_of(arguments.creds) if arguments.creds else None,
            inbox_prefix=f"_INBOX_{arguments.account}",
            connect_timeout=5,
            max_reconnect_attempts=0,
            allow_reconnect=False,
        )
    except Exception as error:  # nats-py raises several kinds for an unreachable server
        print(f"cannot reach NATS at {arguments.nats}: {error}", file=sys.stderr)
        return 2
    try:
        tenant = Tenant(
            connection,
            arguments.namespace,
            arguments.account,
            min(REPLY_TIMEOUT_SECONDS, arguments.timeout),
            with_credentials=bool(arguments.creds),
        )
        import_id = str(uuid.uuid4())
        object_name, digest = await tenant.upload(import_id, arguments.file)
        options = {"policy": arguments.duplicates, "tags": arguments.tag}
        if arguments.type:
            options["contact_type"] = arguments.type
        await tenant.start(
            {
                "schema": 1,
                "account": arguments.account,
                "import_id": import_id,
                "object_name": object_name,
                "file_name": arguments.file.rsplit("/", 1)[-1],
                "file_sha256": digest,
                "options": options,
            }
        )
        status = await asyncio.wait_for(tenant.summary(import_id), arguments.timeout)
    except (asyncio.TimeoutError, nats.errors.Error) as error:
        print(f"the deployment did not answer: {error!r}", file=sys.stderr)
        return 2
    finally:
        await connection.close()
    print(json.dumps(status))
    return 0 if status["status"] == "completed" else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file", help="the CSV file to import")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    parser.add_argument("--namespace", default="ci", help="the deployment's namespace")
    parser.add_argument("--account", required=True, help="the tenant's account")
    parser.add_argument("--creds", help="the tenant's credentials file (an nkey seed)")
    parser.add_argument("--duplicates", default="link", choices=["link", "duplicate", "skip"])
    parser.add_argument("--type", help="the contact type of every imported contact")
    parser.add_argument("--tag", action="append", default=[], help="a tag (repeatable)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait in all")
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()

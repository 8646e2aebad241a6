"""ACL authorization (issue 11) with Kafka's StandardAuthorizer semantics, principals
from mutual-TLS client certificates (CN=alice, CN=bob, CN=carol, CN=admin mapped to
User:<cn> by ssl.principal.mapping.rules).

Each broker has a PLAINTEXT listener (the fixtures' readiness check, the CLI and
inter-broker traffic: User:ANONYMOUS, a super user as Kafka requires for brokers) and
an MTLS listener (SSL, client certificates required) the clients use.

- an ACL matrix for each API family (produce, consume in a group, offsets, topic
  create/delete/describe, configs, transactions, cluster admin): an allowed and a
  denied principal, with confluent-kafka's, kafka-python's and the Java client's
  errors (and kcat's for produce and listing);
- prefixed ACLs, DENY over ALLOW, super users, allow.everyone.if.no.acl.found;
- Metadata and ListGroups show only what the principal may DESCRIBE; the
  authorized-operations fields; auto-creation needs CREATE;
- ACLs survive a restart and reach every node of a three-node cluster;
- `vltava acl create|list|delete`, and Kafka's errors for bad ACLs and filters
  (raw requests), and without an authorizer (SECURITY_DISABLED).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, ConfigResource, NewTopic, ResourcePatternType,
                                   ResourceType)

import helpers as h
from cluster import Cluster
from conftest import BrokerStartError, free_port, vltava_bin
from tls_certs import CertAuthority

AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
MAPPING = r"RULE:^CN=([a-zA-Z0-9]+),.*$/$1/,DEFAULT"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(root / "ca")
    out = {"ca": ca, "broker": ca.issue("broker", cn="localhost")}
    for name in ("alice", "bob", "carol", "admin"):
        out[name] = ca.issue(name, cn=name, ou="eng")
    return out


def start_acl_broker(start_broker, pki, extra: dict | None = None):
    """A broker with the authorizer on; returns (broker, MTLS port)."""
    for attempt in range(3):
        port = free_port()
        sets = {
            "listeners": f"PLAINTEXT://127.0.0.1:0,MTLS://127.0.0.1:{port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,MTLS:SSL",
            "ssl.keystore.location": str(pki["broker"].keystore_pem),
            "ssl.truststore.location": str(pki["ca"].cert),
            "ssl.client.auth": "required",
            "ssl.principal.mapping.rules": MAPPING,
            "authorizer.class.name": AUTHORIZER,
            "super.users": "User:ANONYMOUS;User:admin",
            "group.initial.rebalance.delay.ms": 0,
        }
        sets.update(extra or {})
        try:
            return start_broker(sets), port
        except BrokerStartError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise


def acl(bootstrap: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run([vltava_bin(), "--brokers", bootstrap, "acl", *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, (res.stdout, res.stderr)
    return res


def acl_list(bootstrap: str, *args) -> list[dict]:
    return json.loads(acl(bootstrap, "list", "--json", *args).stdout)["acls"]


def conf(port: int, pki, who: str) -> dict:
    return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SSL",
            "ssl.ca.location": str(pki["ca"].cert),
            "ssl.certificate.location": str(pki[who].cert), "ssl.key.location": str(pki[who].key)}


def create_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    res = subprocess.run([vltava_bin(), "--brokers", bootstrap, "topic", "create", name,
                          "--partitions", str(partitions)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, (res.stdout, res.stderr)


def produce_error(c: dict, topic: str) -> KafkaError | None:
    """Produces one record; the delivery error (None when written)."""
    p = Producer({**c, "acks": "all", "message.timeout.ms": 20000})
    result = []
    p.produce(topic, b"v", on_delivery=lambda err, _m: result.append(err))
    assert p.flush(40) == 0, "a record still queued after 40 s"
    return result[0]


def code_of(exc: Exception) -> int:
    assert isinstance(exc, KafkaException), repr(exc)
    return exc.args[0].code()


def future_error(fut) -> int | None:
    try:
        fut.result(30)
        return None
    except KafkaException as e:
        return code_of(e)


def group_error(c: dict, topic: str, group: str) -> int | None:
    """Subscribes in `group` and polls until a record arrives (committed; None), the end
    of an empty partition is reached (None), or an error is reported (its code)."""
    consumer = Consumer({**c, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False, "enable.partition.eof": True})
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            if m.error() is None:
                consumer.commit(message=m, asynchronous=False)
                return None
            if m.error().code() == KafkaError._PARTITION_EOF:
                return None
            return m.error().code()
        raise AssertionError(f"neither a record nor an error from {topic} in group {group} within 45 s")
    finally:
        consumer.close()


def grant(bootstrap: str) -> None:
    """The ACLs of the matrix, made with the CLI (as User:ANONYMOUS, a super user)."""
    a = lambda *args: acl(bootstrap, "create", *args)
    a("--allow-principal", "User:alice", "--operation", "read", "--operation", "write", "--topic", "orders")
    a("--allow-principal", "User:alice", "--operation", "read", "--group", "alice-", "--resource-pattern-type", "prefixed")
    a("--allow-principal", "User:alice", "--operation", "create", "--operation", "delete", "--topic", "alice-",
      "--resource-pattern-type", "prefixed")
    a("--allow-principal", "User:alice", "--operation", "describe-configs", "--operation", "alter-configs",
      "--topic", "orders")
    a("--allow-principal", "User:alice", "--operation", "write", "--transactional-id", "tx-alice")
    # bob may read orders (so he sees it) but nothing else
    a("--allow-principal", "User:bob", "--operation", "read", "--topic", "orders")
    # carol: everything on shared*, but never WRITE on shared-ro (DENY beats ALLOW)
    a("--allow-principal", "User:carol", "--operation", "all", "--topic", "shared", "--resource-pattern-type", "prefixed")
    a("--deny-principal", "User:carol", "--operation", "write", "--topic", "shared-ro")
    a("--allow-principal", "User:carol", "--operation", "read", "--group", "shared", "--resource-pattern-type", "prefixed")


@pytest.fixture
def acl_broker(start_broker, pki):
    b, port = start_acl_broker(start_broker, pki)
    for t in ("orders", "secret", "shared-rw", "shared-ro"):
        create_topic(b.bootstrap, t)
    grant(b.bootstrap)
    return b, port


# ------------------------------------------------------------------ the matrix


@pytest.mark.timeout(300)
def test_matrix_confluent_kafka(acl_broker, pki):
    b, port = acl_broker
    alice, bob, admin = conf(port, pki, "alice"), conf(port, pki, "bob"), conf(port, pki, "admin")
    E = KafkaError

    # produce: WRITE on the topic
    assert produce_error(alice, "orders") is None
    assert produce_error(bob, "orders").code() == E.TOPIC_AUTHORIZATION_FAILED

    # consume in a group: READ on the group (and the topic)
    assert group_error(alice, "orders", "alice-g") is None
    assert group_error(bob, "orders", "alice-g") == E.GROUP_AUTHORIZATION_FAILED

    # offsets: a group's committed offsets need DESCRIBE on it (and on the topic)
    from confluent_kafka import ConsumerGroupTopicPartitions
    aa, ba = AdminClient(alice), AdminClient(bob)
    offsets = lambda admin: admin.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions("alice-g", [TopicPartition("orders", 0)])])["alice-g"]
    assert offsets(aa).result(30).topic_partitions[0].offset == 1
    assert future_error(offsets(ba)) == E.GROUP_AUTHORIZATION_FAILED

    # topic admin: CREATE and DELETE on prefixed alice-
    assert future_error(aa.create_topics([NewTopic("alice-new", 1, 1)])["alice-new"]) is None
    assert future_error(ba.create_topics([NewTopic("bob-new", 1, 1)])["bob-new"]) == E.TOPIC_AUTHORIZATION_FAILED
    assert future_error(aa.create_topics([NewTopic("other-new", 1, 1)])["other-new"]) == E.TOPIC_AUTHORIZATION_FAILED
    assert future_error(ba.delete_topics(["alice-new"])["alice-new"]) == E.TOPIC_AUTHORIZATION_FAILED
    assert future_error(aa.delete_topics(["alice-new"])["alice-new"]) is None
    # describe: bob sees orders (READ implies DESCRIBE), never secret
    assert set(ba.list_topics(timeout=30).topics) == {"orders"}
    assert set(aa.list_topics(timeout=30).topics) == {"orders"}
    ad = AdminClient(admin)
    assert {"orders", "secret", "shared-rw", "shared-ro"} <= set(ad.list_topics(timeout=30).topics)

    # configs: DESCRIBE_CONFIGS / ALTER_CONFIGS on the topic
    res = ConfigResource(ConfigResource.Type.TOPIC, "orders")
    assert future_error(aa.describe_configs([res])[res]) is None
    assert future_error(ba.describe_configs([res])[res]) == E.TOPIC_AUTHORIZATION_FAILED
    change = ConfigResource(ConfigResource.Type.TOPIC, "orders", set_config={"retention.ms": "3600000"})
    assert future_error(aa.alter_configs([change])[change]) is None
    assert future_error(ba.alter_configs([change])[change]) == E.TOPIC_AUTHORIZATION_FAILED
    broker_res = ConfigResource(ConfigResource.Type.BROKER, "1")
    assert future_error(ba.describe_configs([broker_res])[broker_res]) == E.CLUSTER_AUTHORIZATION_FAILED

    # transactions: WRITE on the transactional id
    p = Producer({**alice, "transactional.id": "tx-alice"})
    p.init_transactions(30)
    p.begin_transaction()
    p.produce("orders", b"in-txn")
    p.commit_transaction(30)
    p = Producer({**bob, "transactional.id": "tx-alice"})
    with pytest.raises(KafkaException) as e:
        p.init_transactions(30)
    assert code_of(e.value) == E.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

    # cluster admin: ACL APIs need ALTER / DESCRIBE on the cluster; admin is a super user
    binding = AclBinding(ResourceType.TOPIC, "x", ResourcePatternType.LITERAL, "User:bob", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    assert future_error(ba.create_acls([binding])[binding]) == E.CLUSTER_AUTHORIZATION_FAILED
    any_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    # (librdkafka's describe_acls hands back an empty list on a DescribeAcls error)
    assert ba.describe_acls(any_filter).result(30) == []
    assert future_error(ad.create_acls([binding])[binding]) is None
    assert len(ad.describe_acls(any_filter).result(30)) == 13
    assert b.is_running()


@pytest.mark.timeout(240)
def test_prefixed_acls_deny_over_allow_and_super_user(acl_broker, pki):
    _b, port = acl_broker
    carol, admin = conf(port, pki, "carol"), conf(port, pki, "admin")
    # prefixed ALLOW ALL on shared*: carol writes shared-rw ...
    assert produce_error(carol, "shared-rw") is None
    # ... but a literal DENY of WRITE on shared-ro beats it
    assert produce_error(carol, "shared-ro").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # the DENY of WRITE does not deny what ALL allows otherwise (READ)
    assert group_error(carol, "shared-ro", "shared-g") is None, "carol reads shared-ro"
    # nothing for carol outside the prefix
    assert produce_error(carol, "orders").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    # a super user has no ACL and may do everything
    for t in ("orders", "secret", "shared-ro"):
        assert produce_error(admin, t) is None
    assert group_error(admin, "secret", "any-group") is None


@pytest.mark.timeout(240)
def test_allow_everyone_if_no_acl_found(start_broker, pki):
    b, port = start_acl_broker(start_broker, pki, {"allow.everyone.if.no.acl.found": "true"})
    create_topic(b.bootstrap, "open")
    create_topic(b.bootstrap, "guarded")
    acl(b.bootstrap, "create", "--allow-principal", "User:alice", "--operation", "write", "--topic", "guarded")
    bob = conf(port, pki, "bob")
    # no ACL on "open" at all: everyone may; "guarded" has one (for alice): bob may not
    assert produce_error(bob, "open") is None
    assert produce_error(bob, "guarded").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert produce_error(conf(port, pki, "alice"), "guarded") is None


# ----------------------------------------------------------- other clients


@pytest.mark.timeout(240)
def test_matrix_kafka_python(acl_broker, pki):
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KNewTopic
    from kafka.errors import (GroupAuthorizationFailedError, TopicAuthorizationFailedError,
                              TransactionalIdAuthorizationFailedError)

    _b, port = acl_broker

    def kconf(who):
        return dict(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SSL",
                    ssl_cafile=str(pki["ca"].cert), ssl_certfile=str(pki[who].cert),
                    ssl_keyfile=str(pki[who].key))

    # produce
    p = KafkaProducer(acks="all", **kconf("alice"))
    assert p.send("orders", b"kp").get(30).offset >= 0
    p.close()
    p = KafkaProducer(acks="all", retries=0, **kconf("bob"))
    with pytest.raises(TopicAuthorizationFailedError):
        p.send("orders", b"kp").get(30)
    p.close()

    # consume in a group
    c = KafkaConsumer("orders", group_id="alice-kp", auto_offset_reset="earliest", **kconf("alice"))
    try:
        got = h.wait_until(lambda: [m for ms in c.poll(timeout_ms=500).values() for m in ms], 45,
                           "alice reads orders in group alice-kp")
        assert got
    finally:
        c.close()
    c = KafkaConsumer("orders", group_id="alice-kp", auto_offset_reset="earliest", **kconf("bob"))
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                c.poll(timeout_ms=500)
    finally:
        c.close()

    # topic admin
    admin = KafkaAdminClient(**kconf("bob"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            admin.create_topics([KNewTopic("bob-kp", 1, 1)])
        assert "secret" not in admin.list_topics()
    finally:
        admin.close()
    admin = KafkaAdminClient(**kconf("alice"))
    try:
        admin.create_topics([KNewTopic("alice-kp", 1, 1)])
    finally:
        admin.close()

    # transactions
    p = KafkaProducer(transactional_id="tx-alice", **kconf("bob"))
    try:
        with pytest.raises(TransactionalIdAuthorizationFailedError):
            p.init_transactions()
    finally:
        p.close(timeout=5)


@pytest.mark.timeout(300)
def test_matrix_java_client(acl_broker, pki, tmp_path):
    _b, port = acl_broker
    results = {}
    for who in ("alice", "bob"):
        p12 = pki[who].pkcs12(f"{who}-secret")
        props = tmp_path / f"{who}.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in {
            "security.protocol": "SSL", "ssl.truststore.type": "PEM",
            "ssl.truststore.location": pki["ca"].cert, "ssl.keystore.type": "PKCS12",
            "ssl.keystore.location": p12, "ssl.keystore.password": f"{who}-secret",
            "ssl.key.password": f"{who}-secret"}.items()))
        res = h.run_java("AclProbe", f"127.0.0.1:{port}", props, "orders", "alice-java", "tx-alice",
                         f"alice-java-{who}", timeout=280)
        assert res.returncode == 0, (res.stdout[-3000:], res.stderr[-3000:])
        results[who] = dict(line.split()[1:3] for line in res.stdout.splitlines() if line.startswith("RESULT "))
    assert results["alice"] == {"produce": "OK", "commit": "OK", "create-topic": "OK", "transaction": "OK",
                                "describe-acls": "ClusterAuthorizationException"}, results
    assert results["bob"] == {"produce": "TopicAuthorizationException", "commit": "GroupAuthorizationException",
                              "create-topic": "TopicAuthorizationException",
                              "describe-acls": "ClusterAuthorizationException",
                              "transaction": "TransactionalIdAuthorizationException"}, results


# ------------------------------------------------ what a principal may see


@pytest.mark.timeout(240)
def test_metadata_list_groups_and_authorized_operations(acl_broker, pki):
    b, port = acl_broker
    alice, bob, admin = conf(port, pki, "alice"), conf(port, pki, "bob"), conf(port, pki, "admin")
    # two groups exist: alice-seen (alice may READ) and hidden-g (nobody but admin)
    assert group_error(alice, "orders", "alice-seen") is None
    assert group_error(admin, "orders", "hidden-g") is None
    def listed(c):
        admin = AdminClient(c)
        return {g.group_id for g in admin.list_consumer_groups().result(30).valid}
    assert listed(alice) == {"alice-seen"}
    assert listed(bob) == set()
    assert {"alice-seen", "hidden-g"} <= listed(admin)

    # Metadata hides topics; naming one the principal may not see fails
    bob_admin = AdminClient(bob)
    md = bob_admin.list_topics(topic="secret", timeout=30)
    assert md.topics["secret"].error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    # authorized operations: only what the ACLs give
    from confluent_kafka import TopicCollection
    def ops(c, t):
        admin = AdminClient(c)
        described = admin.describe_topics(TopicCollection([t]), include_authorized_operations=True)[t].result(30)
        return {o.name for o in described.authorized_operations}
    assert ops(bob, "orders") == {"READ", "DESCRIBE"}
    assert ops(alice, "orders") == {"READ", "WRITE", "DESCRIBE", "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    assert ops(admin, "orders") == {"READ", "WRITE", "CREATE", "DELETE", "ALTER", "DESCRIBE",
                                    "DESCRIBE_CONFIGS", "ALTER_CONFIGS"}
    def cluster_ops(c):
        admin = AdminClient(c)
        return {o.name for o in admin.describe_cluster(include_authorized_operations=True).result(30)
                .authorized_operations or []}
    assert cluster_ops(bob) == set()
    assert "ALTER" in cluster_ops(admin) and "CLUSTER_ACTION" in cluster_ops(admin)
    aa, ba = AdminClient(alice), AdminClient(bob)
    group = aa.describe_consumer_groups(["alice-seen"], include_authorized_operations=True)
    assert {o.name for o in group["alice-seen"].result(30).authorized_operations} == {"READ", "DESCRIBE"}
    assert future_error(ba.describe_consumer_groups(["alice-seen"])["alice-seen"]) == \
        KafkaError.GROUP_AUTHORIZATION_FAILED


# ------------------------------------------------------------- persistence


@pytest.mark.timeout(240)
def test_acls_survive_a_restart(acl_broker, pki):
    b, port = acl_broker
    before = acl_list(b.bootstrap)
    assert len(before) == 12
    # the same PLAINTEXT port after the restart
    b.sets["listeners"] = b.sets["listeners"].replace("127.0.0.1:0,", f"127.0.0.1:{b.port},")
    b.restart()
    assert acl_list(b.bootstrap) == before
    assert produce_error(conf(port, pki, "alice"), "orders") is None
    assert produce_error(conf(port, pki, "bob"), "orders").code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.timeout(300)
def test_acls_reach_every_node_of_a_cluster(tmp_path):
    settings = {"authorizer.class.name": AUTHORIZER, "super.users": "User:ANONYMOUS"}
    with Cluster(tmp_path, n=3, settings=settings) as c:
        c.wait_controller(timeout=60)
        first = c.nodes[1].bootstrap
        acl(first, "create", "--allow-principal", "User:alice", "--operation", "read", "--topic", "everywhere")
        for node in c.nodes.values():
            h.wait_until(lambda: [a["resource_name"] for a in acl_list(node.bootstrap)] == ["everywhere"], 30,
                         f"the ACL on node {node.node_id}")
        # the cluster still replicates (inter-broker principal is a super user)
        c.create_topic("rf3", partitions=1, replication_factor=3)
        c.wait_isr("rf3", None, 3, timeout=60)
        c.restart(2)
        assert [a["resource_name"] for a in acl_list(c.nodes[2].bootstrap)] == ["everywhere"]


# -------------------------------------------------------------------- the CLI


@pytest.mark.timeout(120)
def test_cli_create_list_delete(start_broker, pki):
    b, _port = start_acl_broker(start_broker, pki)
    bs = b.bootstrap
    assert acl_list(bs) == []
    out = acl(bs, "create", "--allow-principal", "User:alice", "--allow-principal", "User:bob",
              "--allow-host", "10.0.0.1", "--operation", "read", "--operation", "describe",
              "--topic", "t1", "--group", "g1").stdout
    assert out.count("created") == 8, out
    acl(bs, "create", "--deny-principal", "User:eve", "--operation", "all", "--topic", "t", "--resource-pattern-type",
        "prefixed")
    acl(bs, "create", "--allow-principal", "User:ops", "--operation", "alter", "--cluster")
    acl(bs, "create", "--allow-principal", "User:app", "--operation", "write", "--transactional-id", "tx")
    assert len(acl_list(bs)) == 11
    # creating an existing binding again adds nothing
    acl(bs, "create", "--allow-principal", "User:ops", "--operation", "alter", "--cluster")
    assert len(acl_list(bs)) == 11
    # filters: by principal; MATCH: every pattern covering topic t1
    assert len(acl_list(bs, "--principal", "User:alice")) == 4
    matching = acl_list(bs, "--topic", "t1", "--resource-pattern-type", "match")
    assert {(a["resource_name"], a["pattern_type"]) for a in matching} == {("t1", "LITERAL"), ("t", "PREFIXED")}
    assert acl_list(bs, "--cluster") == [{"resource_type": "CLUSTER", "resource_name": "kafka-cluster",
                                          "pattern_type": "LITERAL", "principal": "User:ops", "host": "*",
                                          "operation": "ALTER", "permission_type": "ALLOW"}]
    # delete: bob's READ on t1; then everything on group g1
    out = acl(bs, "delete", "--allow-principal", "User:bob", "--allow-host", "10.0.0.1", "--operation", "read",
              "--topic", "t1").stdout
    assert out.count("deleted") == 1, out
    assert acl(bs, "delete", "--group", "g1").stdout.count("deleted") == 4
    assert len(acl_list(bs)) == 6
    # a literal delete leaves the prefixed binding of the same name alone
    assert "no matching ACLs" in acl(bs, "delete", "--topic", "t").stdout
    assert acl(bs, "delete", "--topic", "t", "--resource-pattern-type", "prefixed").stdout.count("deleted") == 1
    # Kafka's errors: a bad principal is INVALID_REQUEST
    res = acl(bs, "create", "--allow-principal", "alice", "--operation", "read", "--topic", "x", check=False)
    assert res.returncode != 0 and "INVALID_REQUEST" in res.stderr, res


@pytest.mark.timeout(120)
def test_acl_apis_without_an_authorizer(start_broker):
    b = start_broker()
    for args in (["list"], ["create", "--allow-principal", "User:a", "--topic", "t"], ["delete", "--topic", "t"]):
        res = acl(b.bootstrap, *args, check=False)
        assert res.returncode != 0 and "SECURITY_DISABLED" in res.stderr, res


@pytest.mark.timeout(60)
def test_an_unknown_authorizer_class_refuses_to_start(start_broker):
    with pytest.raises(BrokerStartError) as e:
        start_broker({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"})
    assert "StandardAuthorizer" in str(e.value)


@pytest.mark.timeout(120)
def test_bad_acls_and_filters_are_invalid_requests(start_broker, pki):
    """Raw CreateAcls / DescribeAcls / DeleteAcls v1 (as User:ANONYMOUS, a super user):
    a binding or filter with an unknown or filter-only code is INVALID_REQUEST, as in
    Kafka; the valid ones next to it go through."""
    import kafka_wire as w
    b, _port = start_acl_broker(start_broker, pki)
    TOPIC, ANY, MATCH, LITERAL, READ, ALLOW = 2, 1, 2, 3, 3, 3
    INVALID_REQUEST = 42

    def creation(rt, pt, principal="User:alice", op=READ, perm=ALLOW, name="t"):
        return (w.int8(rt) + w.string(name) + w.int8(pt) + w.string(principal) + w.string("*")
                + w.int8(op) + w.int8(perm))

    def filt(rt=ANY, pt=ANY, op=ANY, perm=ANY):
        return w.int8(rt) + w.string(None) + w.int8(pt) + w.string(None) + w.string(None) + w.int8(op) + w.int8(perm)

    with w.connect(b.port) as s:
        # CreateAcls v1: MATCH pattern, ANY resource type, ANY operation, no colon: refused; one valid
        body = w.array([creation(TOPIC, MATCH), creation(ANY, LITERAL), creation(TOPIC, LITERAL, op=ANY),
                        creation(TOPIC, LITERAL, principal="alice"), creation(TOPIC, LITERAL)])
        r = w.Reader(w.roundtrip(s, w.request_header_v1(30, 1, 1) + body))
        assert r.int32() == 1 and r.int32() == 0
        codes = []
        for _ in range(r.int32()):
            codes.append(r.int16())
            r.string()
        assert codes == [INVALID_REQUEST] * 4 + [0], codes
        # DescribeAcls v1: an UNKNOWN (0) pattern type is INVALID_REQUEST; ANY finds the one binding
        r = w.Reader(w.roundtrip(s, w.request_header_v1(29, 1, 2) + filt(pt=0)))
        assert r.int32() == 2 and r.int32() == 0 and r.int16() == INVALID_REQUEST
        r = w.Reader(w.roundtrip(s, w.request_header_v1(29, 1, 3) + filt()))
        assert r.int32() == 3 and r.int32() == 0 and r.int16() == 0
        r.string()
        assert r.int32() == 1, "one resource with ACLs"
        # DeleteAcls v1: a filter with an UNKNOWN operation is INVALID_REQUEST, the other deletes
        body = w.array([filt(op=0), filt(rt=TOPIC)])
        r = w.Reader(w.roundtrip(s, w.request_header_v1(31, 1, 4) + body))
        assert r.int32() == 4 and r.int32() == 0
        assert r.int32() == 2
        assert r.int16() == INVALID_REQUEST
        r.string()
        assert r.int32() == 0
        assert r.int16() == 0
        r.string()
        assert r.int32() == 1, "the valid filter deleted the binding"
    assert acl_list(b.bootstrap) == []


def tls_metadata_error(port: int, pki, who: str, topic: str) -> int:
    """A Metadata v1 request (which auto-creates) for `topic` over mutual TLS as `who`:
    the topic's error code."""
    import socket
    import ssl

    import kafka_wire as w
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    ctx.load_cert_chain(str(pki[who].cert), str(pki[who].key))
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            r = w.Reader(w.roundtrip(s, w.metadata_request_v1(7, [topic])))
    assert r.int32() == 7
    for _ in range(r.int32()):
        r.int32(), r.string(), r.int32(), r.string()
    r.int32()
    assert r.int32() == 1
    return r.int16()


@pytest.mark.timeout(120)
def test_auto_creation_needs_create(acl_broker, pki):
    b, port = acl_broker
    # alice may CREATE alice-*: Metadata creates it; bob may not: TOPIC_AUTHORIZATION_FAILED
    # (and no topic is made); a topic nobody may DESCRIBE is refused the same way
    assert tls_metadata_error(port, pki, "alice", "alice-auto") == 0
    assert tls_metadata_error(port, pki, "bob", "bob-auto") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    assert tls_metadata_error(port, pki, "bob", "secret") == KafkaError.TOPIC_AUTHORIZATION_FAILED
    ad = AdminClient({"bootstrap.servers": b.bootstrap})
    topics = set(ad.list_topics(timeout=30).topics)
    assert "alice-auto" in topics and "bob-auto" not in topics, topics


@pytest.mark.timeout(180)
def test_kcat(acl_broker, pki):
    """kcat (librdkafka) over mutual TLS: alice writes and lists orders; bob's records
    are refused with TOPIC_AUTHORIZATION_FAILED and his listing hides secret."""
    _b, port = acl_broker

    def kcat(who, *args, stdin=None):
        opts = ["-b", f"127.0.0.1:{port}", "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={pki['ca'].cert}",
                "-X", f"ssl.certificate.location={pki[who].cert}", "-X", f"ssl.key.location={pki[who].key}"]
        return subprocess.run(["kcat", *opts, *args], input=stdin, capture_output=True, text=True, timeout=60)

    res = kcat("alice", "-P", "-t", "orders", "-X", "acks=all", stdin="a1\na2\n")
    assert res.returncode == 0, res.stderr
    res = kcat("bob", "-P", "-t", "orders", "-X", "acks=all", "-X", "message.timeout.ms=15000", stdin="b1\n")
    assert "authorization failed" in res.stderr.lower(), res.stderr
    listed = {t["topic"] for t in json.loads(kcat("bob", "-L", "-J").stdout)["topics"]}
    assert listed == {"orders"}, listed

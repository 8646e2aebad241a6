"""CreateTopics / DeleteTopics / Metadata and topic auto-creation, driven by
confluent-kafka's AdminClient and kafka-python's KafkaAdminClient."""

import time

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

import helpers as h


def test_create_topics_visible_in_metadata(module_broker_alive):
    b = module_broker_alive
    a = h.admin(b.bootstrap)
    names = {h.unique("adm1"): 1, h.unique("adm3"): 3, h.unique("adm8"): 8}
    fs = a.create_topics([NewTopic(n, num_partitions=p, replication_factor=1)
                          for n, p in names.items()], request_timeout=30)
    assert set(fs) == set(names)
    for n, f in fs.items():
        assert f.result(30) is None
    for n, p in names.items():
        parts = h.wait_for_topic(b.bootstrap, n, p)
        assert sorted(parts) == list(range(p))
        for pid, pm in parts.items():
            assert pm.id == pid
            assert pm.leader == 1
            assert list(pm.replicas) == [1]
            assert list(pm.isrs) == [1]
    md = a.list_topics(timeout=10)
    assert [bk.id for bk in md.brokers.values()] == [1]
    assert md.brokers[1].host == "127.0.0.1" and md.brokers[1].port == b.port
    listed = {n: len(t.partitions) for n, t in md.topics.items() if n in names}
    assert listed == names


def test_create_duplicate_topic(module_broker_alive):
    b = module_broker_alive
    name = h.unique("dup")
    h.create_topic(b.bootstrap, name, 2)
    a = h.admin(b.bootstrap)
    err = h.raise_kafka(a.create_topics([NewTopic(name, 5, 1)], request_timeout=30)[name])
    assert err is not None and err.code() == KafkaError.TOPIC_ALREADY_EXISTS, err
    # the original topic is untouched
    assert len(h.wait_for_topic(b.bootstrap, name, 2)) == 2


def test_create_zero_partitions(module_broker_alive):
    b = module_broker_alive
    name = h.unique("zero")
    a = h.admin(b.bootstrap)
    err = h.raise_kafka(a.create_topics([NewTopic(name, 0, 1)], request_timeout=30)[name])
    assert err is not None and err.code() == KafkaError.INVALID_PARTITIONS, err
    assert name not in h.all_topics(b.bootstrap)


def test_create_negative_partitions_kafka_python(module_broker_alive):
    # librdkafka refuses num_partitions < -1 locally, so send it with kafka-python.
    from kafka import KafkaAdminClient
    from kafka.errors import InvalidPartitionsError
    b = module_broker_alive
    name = h.unique("neg")
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        with pytest.raises(InvalidPartitionsError):
            a.create_topics({name: {"num_partitions": -5, "replication_factor": 1}})
    finally:
        a.close()
    assert name not in h.all_topics(b.bootstrap)


def test_create_replication_factor_too_large(module_broker_alive):
    b = module_broker_alive
    name = h.unique("rf3")
    a = h.admin(b.bootstrap)
    err = h.raise_kafka(a.create_topics([NewTopic(name, 1, 3)], request_timeout=30)[name])
    assert err is not None and err.code() == KafkaError.INVALID_REPLICATION_FACTOR, err
    assert name not in h.all_topics(b.bootstrap)


@pytest.mark.parametrize("name", ["bad name", "a/b", "..", ".", "x" * 250, "semi;colon", ""],
                         ids=["space", "slash", "dotdot", "dot", "250chars", "semicolon", "empty"])
def test_create_illegal_topic_name(module_broker_alive, name):
    b = module_broker_alive
    a = h.admin(b.bootstrap)
    fs = a.create_topics([NewTopic(name, 1, 1)], request_timeout=30)
    err = h.raise_kafka(fs[name])
    assert err is not None and err.code() == KafkaError.TOPIC_EXCEPTION, err
    assert name not in h.all_topics(b.bootstrap)


def test_create_max_length_name_is_legal(module_broker_alive):
    b = module_broker_alive
    name = ("maxlen-" + h.unique("n") + "_" * 249)[:249]
    h.create_topic(b.bootstrap, name, 1)
    assert h.all_topics(b.bootstrap)[name] == 1


def test_create_multiple_mixed_results(module_broker_alive):
    """One CreateTopics request with good and bad entries: per-topic results."""
    b = module_broker_alive
    good, existing, bad = h.unique("good"), h.unique("exist"), "bad name " + h.unique("x")
    h.create_topic(b.bootstrap, existing, 1)
    a = h.admin(b.bootstrap)
    fs = a.create_topics([NewTopic(good, 2, 1), NewTopic(existing, 1, 1), NewTopic(bad, 1, 1)],
                         request_timeout=30)
    assert h.raise_kafka(fs[good]) is None
    assert h.raise_kafka(fs[existing]).code() == KafkaError.TOPIC_ALREADY_EXISTS
    assert h.raise_kafka(fs[bad]).code() == KafkaError.TOPIC_EXCEPTION
    h.wait_for_topic(b.bootstrap, good, 2)


def test_delete_topic(module_broker_alive):
    b = module_broker_alive
    name, other = h.unique("del"), h.unique("keep")
    h.create_topic(b.bootstrap, name, 3)
    h.create_topic(b.bootstrap, other, 1)
    a = h.admin(b.bootstrap)
    fs = a.delete_topics([name], request_timeout=30)
    assert h.raise_kafka(fs[name]) is None
    h.wait_topic_gone(b.bootstrap, name)
    md = a.list_topics(topic=name, timeout=10)
    assert md.topics[name].error is not None
    assert md.topics[name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert h.all_topics(b.bootstrap)[other] == 1
    # the name can be reused, and the new topic starts empty
    h.create_topic(b.bootstrap, name, 2)
    assert h.watermarks(b.bootstrap, name, 0) == (0, 0)
    assert h.watermarks(b.bootstrap, name, 1) == (0, 0)


def test_delete_topic_with_data_then_recreate_is_empty(module_broker_alive):
    b = module_broker_alive
    name = h.unique("deldata")
    h.create_topic(b.bootstrap, name, 1)
    p = h.make_producer(b.bootstrap)
    d = h.produce_all(p, name, [h.Rec(b"k", b"v%d" % i, None, None) for i in range(50)],
                      partition=0)
    assert not d.errors()
    assert h.watermarks(b.bootstrap, name, 0) == (0, 50)
    a = h.admin(b.bootstrap)
    assert h.raise_kafka(a.delete_topics([name], request_timeout=30)[name]) is None
    h.wait_topic_gone(b.bootstrap, name)
    h.create_topic(b.bootstrap, name, 1)
    assert h.watermarks(b.bootstrap, name, 0) == (0, 0)
    got = h.consume(b.bootstrap, name, {0: 0})
    assert got == {0: []}


def test_delete_unknown_topic(module_broker_alive):
    b = module_broker_alive
    name = h.unique("nope")
    a = h.admin(b.bootstrap)
    err = h.raise_kafka(a.delete_topics([name], request_timeout=30)[name])
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err


def test_metadata_unknown_topic_without_autocreate(module_broker_alive):
    # AdminClient metadata requests never ask for auto-creation.
    b = module_broker_alive
    name = h.unique("unknown")
    md = h.admin(b.bootstrap).list_topics(topic=name, timeout=10)
    assert md.topics[name].error is not None
    assert md.topics[name].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    time.sleep(0.5)
    assert name not in h.all_topics(b.bootstrap)


# --------------------------------------------------------------------------
# kafka-python KafkaAdminClient
# --------------------------------------------------------------------------


def test_kafka_python_admin(module_broker_alive):
    from kafka import KafkaAdminClient
    from kafka.errors import (InvalidReplicationFactorError, InvalidTopicError,
                              TopicAlreadyExistsError, UnknownTopicOrPartitionError)
    b = module_broker_alive
    t1, t2 = h.unique("kp1"), h.unique("kp4")
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap, request_timeout_ms=30000)
    try:
        res = a.create_topics({t1: {"num_partitions": 1, "replication_factor": 1},
                               t2: {"num_partitions": 4, "replication_factor": 1}})
        assert sorted((t["name"], t["error_code"]) for t in res["topics"]) == sorted(
            [(t1, 0), (t2, 0)])
        h.wait_for_topic(b.bootstrap, t1, 1)
        h.wait_for_topic(b.bootstrap, t2, 4)
        listed = a.list_topics()
        assert t1 in listed and t2 in listed
        desc = {t["name"]: t for t in a.describe_topics([t1, t2])}
        assert len(desc[t1]["partitions"]) == 1
        assert sorted(p["partition_index"] for p in desc[t2]["partitions"]) == [0, 1, 2, 3]
        assert all(p["leader_id"] == 1 for p in desc[t2]["partitions"])

        with pytest.raises(TopicAlreadyExistsError):
            a.create_topics({t1: {"num_partitions": 1, "replication_factor": 1}})
        with pytest.raises(InvalidReplicationFactorError):
            a.create_topics({h.unique("kprf"): {"num_partitions": 1, "replication_factor": 3}})
        with pytest.raises(InvalidTopicError):
            a.create_topics({"a/b": {"num_partitions": 1, "replication_factor": 1}})

        res = a.delete_topics([t1])
        assert [(t["name"], t["error_code"]) for t in res["topics"]] == [(t1, 0)]
        h.wait_topic_gone(b.bootstrap, t1)
        assert t1 not in a.list_topics()
        assert t2 in a.list_topics()
        with pytest.raises(UnknownTopicOrPartitionError):
            a.delete_topics([t1])
    finally:
        a.close()


# --------------------------------------------------------------------------
# broker defaults and auto-creation
# --------------------------------------------------------------------------


def test_auto_create_on_produce_uses_num_partitions(start_broker):
    b = start_broker({"num.partitions": 3})
    name = h.unique("auto")
    p = h.make_producer(b.bootstrap)
    d = h.produce_all(p, name, [h.Rec(b"k%d" % i, b"v%d" % i, None, None) for i in range(30)])
    assert d.errors() == {}
    parts = h.wait_for_topic(b.bootstrap, name, 3)
    assert sorted(parts) == [0, 1, 2]
    expected = h.expected_by_partition([h.Rec(b"k%d" % i, b"v%d" % i, None, None)
                                        for i in range(30)], d)
    got = h.consume(b.bootstrap, name, {p_: len(expected.get(p_, [])) for p_ in range(3)})
    h.assert_matches(got, expected)


def test_create_topic_with_broker_default_partitions(start_broker):
    b = start_broker({"num.partitions": 3})
    name = h.unique("dflt")
    a = h.admin(b.bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=-1, replication_factor=-1)],
                         request_timeout=30)
    assert h.raise_kafka(fs[name]) is None
    h.wait_for_topic(b.bootstrap, name, 3)


def test_auto_create_disabled(start_broker):
    b = start_broker({"auto.create.topics.enable": "false"})
    name = h.unique("noauto")
    p = h.make_producer(b.bootstrap, {"message.timeout.ms": 10000,
                                      "topic.metadata.propagation.max.ms": 1000})
    d = h.Deliveries()
    p.produce(name, b"value", on_delivery=d.cb(0))
    assert p.flush(30) == 0
    err = d.reports[0][0]
    assert err is not None and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, err
    assert name not in h.all_topics(b.bootstrap)
    # explicit creation still works and the same producer can then deliver
    h.create_topic(b.bootstrap, name, 1)
    other = h.make_producer(b.bootstrap)
    d2 = h.produce_all(other, name, [h.Rec(None, b"after-create", None, None)])
    assert d2.reports[0][0] is None
    assert d2.reports[0][1:] == (0, 0)


def test_authorized_operations_without_an_authorizer(module_broker_alive):
    """KIP-430: asked for, the topic, cluster and group operations the caller may perform
    (with no authorizer: every operation the resource type has, as Kafka answers); not
    asked for, none (librdkafka gives None for Kafka's "not provided")."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation as Op

    b = module_broker_alive
    a = h.admin(b.bootstrap)
    topic = h.unique("ops")
    h.create_topic(b.bootstrap, topic, 2)
    asked = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True)
    assert set(asked[topic].result(30).authorized_operations) == {
        Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE,
        Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS}
    plain = a.describe_topics(TopicCollection([topic]))[topic].result(30)
    assert plain.authorized_operations is None
    cluster = a.describe_cluster(include_authorized_operations=True).result(30)
    assert set(cluster.authorized_operations) == {
        Op.CREATE, Op.ALTER, Op.DESCRIBE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS,
        Op.ALTER_CONFIGS, Op.IDEMPOTENT_WRITE}
    assert a.describe_cluster().result(30).authorized_operations is None
    group = h.unique("opsg")
    g = a.describe_consumer_groups([group], include_authorized_operations=True)[group].result(30)
    assert set(g.authorized_operations) == {Op.READ, Op.DELETE, Op.DESCRIBE}
    g = a.describe_consumer_groups([group])[group].result(30)
    assert not g.authorized_operations


def test_describe_topic_partitions_pages_with_a_cursor(module_broker_alive):
    """KIP-966 with kafka-python: topics in name order, at most response_partition_limit
    partitions a response, next_cursor where the next page starts (an unknown topic
    included, answered UNKNOWN_TOPIC_OR_PARTITION); a cursor naming a topic not asked for
    is INVALID_REQUEST; no topics means every topic."""
    from kafka import KafkaAdminClient

    b = module_broker_alive
    p = h.unique("dtp")
    sizes = {f"{p}-a": 3, f"{p}-b": 2, f"{p}-c": 1}
    for name, n in sizes.items():
        h.create_topic(b.bootstrap, name, n)
    asked = [f"{p}-c", f"{p}-a", f"{p}-zz", f"{p}-b"]
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        pages, cursor = [], None
        while True:
            r = a.describe_topic_partitions(asked, response_partition_limit=2, cursor=cursor)
            pages.append([(t["name"], t["error_code"], [q["partition_index"] for q in t["partitions"]])
                          for t in r["topics"]])
            cursor = r["next_cursor"]
            if cursor is None:
                break
            assert len(pages) < 10, pages
        assert pages == [
            [(f"{p}-a", 0, [0, 1])],
            [(f"{p}-a", 0, [2]), (f"{p}-b", 0, [0])],
            [(f"{p}-b", 0, [1]), (f"{p}-c", 0, [0])],
            [(f"{p}-zz", 3, [])],
        ]
        whole = a.describe_topic_partitions(asked)
        assert whole["next_cursor"] is None
        described = {t["name"]: t for t in whole["topics"]}
        for name, n in sizes.items():
            t = described[name]
            assert len(t["partitions"]) == n and t["topic_id"] is not None and not t["is_internal"]
            assert all(q["leader_id"] == 1 and q["replica_nodes"] == [1] and q["isr_nodes"] == [1]
                       for q in t["partitions"])
        bad = a.describe_topic_partitions([f"{p}-a"], cursor={"topic_name": f"{p}-b",
                                                               "partition_index": 0})
        assert [(t["name"], t["error_code"]) for t in bad["topics"]] == [(f"{p}-a", 42)]
        every = a.describe_topic_partitions([])
        names = [t["name"] for t in every["topics"]]
        assert names == sorted(names) and set(sizes) <= set(names)
    finally:
        a.close()


def test_list_config_resources(module_broker_alive):
    """KIP-1142 with kafka-python: every topic, every broker (and its loggers); no
    client-metrics subscriptions nor group configs exist here."""
    from kafka import KafkaAdminClient

    b = module_broker_alive
    topic = h.unique("lcr")
    h.create_topic(b.bootstrap, topic, 1)
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        every = a.list_config_resources()
        assert topic in every["topic"] and every["broker"] == ["1"] and every["broker_logger"] == ["1"]
        assert set(every) == {"topic", "broker", "broker_logger"}, every
        assert a.list_config_resources(["BROKER"]) == {"broker": ["1"]}
        assert a.list_config_resources(["CLIENT_METRICS", "GROUP"]) == {}
    finally:
        a.close()

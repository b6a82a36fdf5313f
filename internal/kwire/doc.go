// Package kwire is a small Kafka client for a function process that takes
// one message: join the consumer group, take the first record, produce the
// events it emits, commit, leave.
//
// It exists for process start-up cost. A function binary starts once per
// message, so what its packages do at initialisation is paid per message:
// kwire links no package net (whose cgo resolver makes a default build
// dynamically linked) and nothing whose initialisation costs measurably.
// It speaks TCP through the operating system's sockets wrapped in an
// *os.File (the runtime poller gives reads, writes and deadlines), resolves
// names itself (IP literals, /etc/hosts, localhost, DNS over UDP and TCP
// to the servers of /etc/resolv.conf with its search list, ndots, timeout
// and attempts), and encodes requests with franz-go's kmsg.
//
// What it does:
//
//   - Versions: ApiVersions first, then per request the highest version both
//     sides implement, capped at the versions tested against kfake and
//     Apache Kafka 4.4 (versions.go); a broker without a common version is
//     a VersionError. Topic ids where the versions need them.
//   - Routing: metadata for leaders and the group coordinator, refreshed on
//     NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, NOT_COORDINATOR
//     and their kind; connections per broker for group requests, fetches and
//     the rest, so a long poll never delays a heartbeat.
//   - Retries: a refused or dropped connection is dialled again up to
//     DialAttempts times (a closed port fails in about 0.3 s); errors the
//     broker calls retriable are retried for RetryTimeout; anything else (a
//     peer that is not Kafka, no common version, bad credentials) fails at
//     once, in one line naming the broker.
//   - Group: the classic protocol, type "consumer", assignor "range", so it
//     shares groups with sarama's range strategy (the restarter's) and
//     Kafka's RangeAssignor: JoinGroup with MEMBER_ID_REQUIRED, the leader's
//     range assignment, SyncGroup, heartbeats in the background, LeaveGroup.
//   - Take: fetch from the committed offsets (the log start when none) with
//     long polls, following rebalances until a record is taken; holes
//     (committed offsets outside the log) reported; control batches skipped;
//     aborted transactions skipped with ReadCommitted.
//   - Commit: OffsetCommit with generation and member id, metadata kept;
//     OffsetFetch; ListOffsets.
//   - Produce: acks=all, record batch v2 with CRC-32C, uncompressed, keys
//     routed exactly as sarama's NewHashPartitioner, nil keys to one random
//     partition per call, null and empty keys and values kept, headers in
//     order, per-partition errors in a ProduceError; missing topics created
//     with CreateTopics and the broker's defaults.
//   - Compression when reading: gzip, snappy (raw and xerial framing) and lz4
//     built in; zstd by importing kwire/kzstd. Other decoders register with
//     RegisterCodec.
//   - SASL: PLAIN built in; SCRAM-SHA-256 and SCRAM-SHA-512 by importing
//     kwire/kscram. TLS through WithDialer only.
//
// What it does not do: compress what it produces; idempotent or
// transactional produce; fetch sessions; the KIP-848 consumer protocol,
// static membership, cooperative or sticky assignors; SASL OAUTHBEARER,
// GSSAPI and re-authentication (KIP-368: a one-shot connection does not
// outlive a session); record formats v0 and v1 (before Kafka 0.11);
// nsswitch.conf (files come before DNS) and RFC 6724 address sorting
// (IPv4 is tried before IPv6).
package kwire

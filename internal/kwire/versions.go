package kwire

import "strconv"

// The requests kwire sends.
const (
	keyProduce          int16 = 0
	keyFetch            int16 = 1
	keyListOffsets      int16 = 2
	keyMetadata         int16 = 3
	keyOffsetCommit     int16 = 8
	keyOffsetFetch      int16 = 9
	keyFindCoordinator  int16 = 10
	keyJoinGroup        int16 = 11
	keyHeartbeat        int16 = 12
	keyLeaveGroup       int16 = 13
	keySyncGroup        int16 = 14
	keySASLHandshake    int16 = 17
	keyApiVersions      int16 = 18
	keyCreateTopics     int16 = 19
	keySASLAuthenticate int16 = 36
)

// versionRange is the versions of a request kwire implements (min: the
// first whose semantics kwire relies on) and has tested against kfake and
// Apache Kafka (max). A broker's newer versions are not used until tested.
func versionRange(key int16) (lo, hi int16) {
	switch key {
	case keyProduce:
		return 3, 13 // v3: record batch v2
	case keyFetch:
		return 4, 18 // v4: record batch v2, isolation level
	case keyListOffsets:
		return 1, 11 // v1: one offset per partition
	case keyMetadata:
		return 1, 13
	case keyOffsetCommit:
		return 2, 10 // v1+: generation and member id
	case keyOffsetFetch:
		return 1, 10
	case keyFindCoordinator:
		return 0, 6
	case keyJoinGroup:
		return 1, 9 // v1: rebalance timeout
	case keyHeartbeat:
		return 0, 4
	case keyLeaveGroup:
		return 0, 5
	case keySyncGroup:
		return 0, 5
	case keySASLHandshake:
		return 1, 1 // v1: authentication bytes in SaslAuthenticate
	case keyApiVersions:
		return 0, 5
	case keyCreateTopics:
		return 4, 7 // v4: -1 partitions and replication mean the broker's defaults
	case keySASLAuthenticate:
		return 0, 2
	}
	return -1, -1
}

// Versions that renamed a field to a topic id: requests at these versions
// need the topic's id from metadata.
const (
	produceTopicIDVersion      = 13
	fetchTopicIDVersion        = 13
	offsetCommitTopicIDVersion = 10
	offsetFetchTopicIDVersion  = 10
)

func apiName(key int16) string {
	switch key {
	case keyProduce:
		return "Produce"
	case keyFetch:
		return "Fetch"
	case keyListOffsets:
		return "ListOffsets"
	case keyMetadata:
		return "Metadata"
	case keyOffsetCommit:
		return "OffsetCommit"
	case keyOffsetFetch:
		return "OffsetFetch"
	case keyFindCoordinator:
		return "FindCoordinator"
	case keyJoinGroup:
		return "JoinGroup"
	case keyHeartbeat:
		return "Heartbeat"
	case keyLeaveGroup:
		return "LeaveGroup"
	case keySyncGroup:
		return "SyncGroup"
	case keySASLHandshake:
		return "SaslHandshake"
	case keyApiVersions:
		return "ApiVersions"
	case keyCreateTopics:
		return "CreateTopics"
	case keySASLAuthenticate:
		return "SaslAuthenticate"
	}
	return "request " + strconv.Itoa(int(key))
}

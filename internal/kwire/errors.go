package kwire

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var (
	// ErrConfig is returned by NewClient for an invalid option.
	ErrConfig = errors.New("kwire: invalid configuration")

	// ErrClosed is returned for work asked of a closed Client or Member.
	ErrClosed = errors.New("kwire: client closed")

	// ErrNotKafka means the peer answered with something that is not the
	// Kafka protocol (an HTTP or TLS server, for example).
	ErrNotKafka = errors.New("not a Kafka broker")

	// ErrUnsupportedVersion means a broker does not speak a version of a
	// request that kwire implements; a VersionError says which.
	ErrUnsupportedVersion = errors.New("kwire: no common protocol version")

	// ErrCorrupt means a broker sent data kwire cannot decode (a bad CRC,
	// a truncated record, an unknown record format).
	ErrCorrupt = errors.New("kwire: corrupt data")

	// ErrCodec means a record batch is compressed with a codec this binary
	// does not decode; a CodecError says which and how to add it.
	ErrCodec = errors.New("kwire: compression codec not available")

	// ErrTaken is returned by a second Take: a one-shot member takes one
	// record.
	ErrTaken = errors.New("kwire: the member already took its record")

	// ErrUnknownTopic means a topic does not exist (and was not created).
	ErrUnknownTopic = errors.New("kwire: no such topic")

	// ErrNoSuchHost means a broker's host name does not resolve.
	ErrNoSuchHost = errors.New("no such host")

	// ErrNotMember means the group no longer counts this member in its
	// current generation (it was removed, or a rebalance moved on without
	// it): its partitions may belong to another member now, so its commits
	// are refused.
	ErrNotMember = errors.New("kwire: not a member of the group's current generation")
)

// BrokerError is a failure to talk to one broker: connecting to it,
// negotiating with it, or a request's round trip.
type BrokerError struct {
	Addr string // host:port
	Op   string // "dial", "SASL … authentication", or the request's name
	Err  error

	dialing bool // it happened while opening the connection
}

func (e *BrokerError) Error() string {
	return "kwire: " + e.Op + " " + e.Addr + ": " + e.Err.Error()
}

func (e *BrokerError) Unwrap() error { return e.Err }

// VersionError is a request kwire needs that the broker at Addr does not
// accept in any version kwire implements.
type VersionError struct {
	Addr                 string
	Key                  int16 // the request's API key
	BrokerMin, BrokerMax int16 // -1 when the broker does not know the request
	Min, Max             int16 // the versions kwire implements and has tested
}

func (e *VersionError) Error() string {
	if e.BrokerMax < 0 {
		return fmt.Sprintf("kwire: broker %s does not support %s; kwire needs versions %d to %d", e.Addr, apiName(e.Key), e.Min, e.Max)
	}
	return fmt.Sprintf("kwire: broker %s supports %s versions %d to %d, kwire %d to %d: no common version",
		e.Addr, apiName(e.Key), e.BrokerMin, e.BrokerMax, e.Min, e.Max)
}

func (e *VersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

// PartitionError is a failure confined to one partition (Partition -1: to
// one topic).
type PartitionError struct {
	Topic     string
	Partition int32
	Err       error
}

func (e *PartitionError) Error() string {
	where := e.Topic
	if e.Partition >= 0 {
		where += "/" + strconv.Itoa(int(e.Partition))
	}
	return where + ": " + strings.TrimPrefix(e.Err.Error(), "kwire: ")
}

func (e *PartitionError) Unwrap() error { return e.Err }

// ProduceError lists the partitions whose records were not written; the
// records of other partitions were.
type ProduceError struct {
	Partitions []*PartitionError
}

func (e *ProduceError) Error() string {
	var b strings.Builder
	b.WriteString("kwire: produce failed for ")
	for i, p := range e.Partitions {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *ProduceError) Unwrap() []error {
	errs := make([]error, len(e.Partitions))
	for i, p := range e.Partitions {
		errs[i] = p
	}
	return errs
}

// CodecError is a record batch compressed with a codec that is not
// registered in this binary.
type CodecError struct {
	Codec Codec
}

func (e *CodecError) Error() string {
	return fmt.Sprintf("kwire: record batch compressed with %s, which this binary does not decode (%s)",
		e.Codec, e.Codec.hint())
}

func (e *CodecError) Is(target error) bool { return target == ErrCodec }

// Error is an error code a Kafka broker returned. It compares with
// errors.Is against the constants below.
type Error int16

// The Kafka error codes kwire acts on or is likely to report.
const (
	UnknownServerError           Error = -1
	OffsetOutOfRange             Error = 1
	CorruptMessage               Error = 2
	UnknownTopicOrPartition      Error = 3
	LeaderNotAvailable           Error = 5
	NotLeaderOrFollower          Error = 6
	RequestTimedOut              Error = 7
	BrokerNotAvailable           Error = 8
	ReplicaNotAvailable          Error = 9
	MessageTooLarge              Error = 10
	OffsetMetadataTooLarge       Error = 12
	NetworkException             Error = 13
	CoordinatorLoadInProgress    Error = 14
	CoordinatorNotAvailable      Error = 15
	NotCoordinator               Error = 16
	InvalidTopicException        Error = 17
	RecordListTooLarge           Error = 18
	NotEnoughReplicas            Error = 19
	NotEnoughReplicasAfterAppend Error = 20
	IllegalGeneration            Error = 22
	InconsistentGroupProtocol    Error = 23
	InvalidGroupID               Error = 24
	UnknownMemberID              Error = 25
	InvalidSessionTimeout        Error = 26
	RebalanceInProgress          Error = 27
	TopicAuthorizationFailed     Error = 29
	GroupAuthorizationFailed     Error = 30
	ClusterAuthorizationFailed   Error = 31
	UnsupportedSaslMechanism     Error = 33
	IllegalSaslState             Error = 34
	UnsupportedVersion           Error = 35
	TopicAlreadyExists           Error = 36
	InvalidPartitions            Error = 37
	InvalidReplicationFactor     Error = 38
	InvalidConfig                Error = 40
	NotController                Error = 41
	InvalidRequest               Error = 42
	PolicyViolation              Error = 44
	KafkaStorageError            Error = 56
	SaslAuthenticationFailed     Error = 58
	GroupIDNotFound              Error = 69
	ListenerNotFound             Error = 72
	FencedLeaderEpoch            Error = 74
	UnknownLeaderEpoch           Error = 75
	UnsupportedCompressionType   Error = 76
	OffsetNotAvailable           Error = 78
	MemberIDRequired             Error = 79
	PreferredLeaderNotAvailable  Error = 80
	GroupMaxSizeReached          Error = 81
	FencedInstanceID             Error = 82
	InvalidRecord                Error = 87
	UnstableOffsetCommit         Error = 88
	ThrottlingQuotaExceeded      Error = 89
	UnknownTopicID               Error = 100
	InconsistentTopicID          Error = 103
	FencedMemberEpoch            Error = 110
	StaleMemberEpoch             Error = 113
	RebootstrapRequired          Error = 129
)

func (e Error) Error() string {
	switch e {
	case UnknownServerError:
		return "UNKNOWN_SERVER_ERROR"
	case OffsetOutOfRange:
		return "OFFSET_OUT_OF_RANGE"
	case CorruptMessage:
		return "CORRUPT_MESSAGE"
	case UnknownTopicOrPartition:
		return "UNKNOWN_TOPIC_OR_PARTITION"
	case LeaderNotAvailable:
		return "LEADER_NOT_AVAILABLE"
	case NotLeaderOrFollower:
		return "NOT_LEADER_OR_FOLLOWER"
	case RequestTimedOut:
		return "REQUEST_TIMED_OUT"
	case BrokerNotAvailable:
		return "BROKER_NOT_AVAILABLE"
	case ReplicaNotAvailable:
		return "REPLICA_NOT_AVAILABLE"
	case MessageTooLarge:
		return "MESSAGE_TOO_LARGE"
	case OffsetMetadataTooLarge:
		return "OFFSET_METADATA_TOO_LARGE"
	case NetworkException:
		return "NETWORK_EXCEPTION"
	case CoordinatorLoadInProgress:
		return "COORDINATOR_LOAD_IN_PROGRESS"
	case CoordinatorNotAvailable:
		return "COORDINATOR_NOT_AVAILABLE"
	case NotCoordinator:
		return "NOT_COORDINATOR"
	case InvalidTopicException:
		return "INVALID_TOPIC_EXCEPTION"
	case RecordListTooLarge:
		return "RECORD_LIST_TOO_LARGE"
	case NotEnoughReplicas:
		return "NOT_ENOUGH_REPLICAS"
	case NotEnoughReplicasAfterAppend:
		return "NOT_ENOUGH_REPLICAS_AFTER_APPEND"
	case IllegalGeneration:
		return "ILLEGAL_GENERATION"
	case InconsistentGroupProtocol:
		return "INCONSISTENT_GROUP_PROTOCOL"
	case InvalidGroupID:
		return "INVALID_GROUP_ID"
	case UnknownMemberID:
		return "UNKNOWN_MEMBER_ID"
	case InvalidSessionTimeout:
		return "INVALID_SESSION_TIMEOUT"
	case RebalanceInProgress:
		return "REBALANCE_IN_PROGRESS"
	case TopicAuthorizationFailed:
		return "TOPIC_AUTHORIZATION_FAILED"
	case GroupAuthorizationFailed:
		return "GROUP_AUTHORIZATION_FAILED"
	case ClusterAuthorizationFailed:
		return "CLUSTER_AUTHORIZATION_FAILED"
	case UnsupportedSaslMechanism:
		return "UNSUPPORTED_SASL_MECHANISM"
	case IllegalSaslState:
		return "ILLEGAL_SASL_STATE"
	case UnsupportedVersion:
		return "UNSUPPORTED_VERSION"
	case TopicAlreadyExists:
		return "TOPIC_ALREADY_EXISTS"
	case InvalidPartitions:
		return "INVALID_PARTITIONS"
	case InvalidReplicationFactor:
		return "INVALID_REPLICATION_FACTOR"
	case InvalidConfig:
		return "INVALID_CONFIG"
	case NotController:
		return "NOT_CONTROLLER"
	case InvalidRequest:
		return "INVALID_REQUEST"
	case PolicyViolation:
		return "POLICY_VIOLATION"
	case KafkaStorageError:
		return "KAFKA_STORAGE_ERROR"
	case SaslAuthenticationFailed:
		return "SASL_AUTHENTICATION_FAILED"
	case GroupIDNotFound:
		return "GROUP_ID_NOT_FOUND"
	case ListenerNotFound:
		return "LISTENER_NOT_FOUND"
	case FencedLeaderEpoch:
		return "FENCED_LEADER_EPOCH"
	case UnknownLeaderEpoch:
		return "UNKNOWN_LEADER_EPOCH"
	case UnsupportedCompressionType:
		return "UNSUPPORTED_COMPRESSION_TYPE"
	case OffsetNotAvailable:
		return "OFFSET_NOT_AVAILABLE"
	case MemberIDRequired:
		return "MEMBER_ID_REQUIRED"
	case PreferredLeaderNotAvailable:
		return "PREFERRED_LEADER_NOT_AVAILABLE"
	case GroupMaxSizeReached:
		return "GROUP_MAX_SIZE_REACHED"
	case FencedInstanceID:
		return "FENCED_INSTANCE_ID"
	case InvalidRecord:
		return "INVALID_RECORD"
	case UnstableOffsetCommit:
		return "UNSTABLE_OFFSET_COMMIT"
	case ThrottlingQuotaExceeded:
		return "THROTTLING_QUOTA_EXCEEDED"
	case UnknownTopicID:
		return "UNKNOWN_TOPIC_ID"
	case InconsistentTopicID:
		return "INCONSISTENT_TOPIC_ID"
	case FencedMemberEpoch:
		return "FENCED_MEMBER_EPOCH"
	case StaleMemberEpoch:
		return "STALE_MEMBER_EPOCH"
	case RebootstrapRequired:
		return "REBOOTSTRAP_REQUIRED"
	}
	return "KAFKA_ERROR_" + strconv.Itoa(int(e))
}

// Retriable says whether the broker means the condition to pass: a leader
// moving, a coordinator loading, a topic still being created.
func (e Error) Retriable() bool {
	switch e {
	case CorruptMessage, UnknownTopicOrPartition, LeaderNotAvailable, NotLeaderOrFollower,
		RequestTimedOut, BrokerNotAvailable, ReplicaNotAvailable, NetworkException,
		CoordinatorLoadInProgress, CoordinatorNotAvailable, NotCoordinator,
		NotEnoughReplicas, NotEnoughReplicasAfterAppend, NotController, KafkaStorageError,
		ListenerNotFound, FencedLeaderEpoch, UnknownLeaderEpoch, OffsetNotAvailable,
		PreferredLeaderNotAvailable, UnstableOffsetCommit, ThrottlingQuotaExceeded,
		UnknownTopicID, InconsistentTopicID:
		return true
	}
	return false
}

// errorCode converts a response's error code; 0 is nil.
func errorCode(code int16) error {
	if code == 0 {
		return nil
	}
	return Error(code)
}

// withMessage appends a broker's error message, when it sent one.
func withMessage(err error, msg *string) error {
	if err == nil || msg == nil || *msg == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, *msg)
}

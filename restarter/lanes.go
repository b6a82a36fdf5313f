package restarter

import (
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/microfn/microfn/internal/delivery"
)

// item is one message on its way through a deployment.
type item struct {
	msg     *sarama.ConsumerMessage
	ps      *partState
	lane    string // ordering lane; "" for none
	attempt int
	// crashed, when set, is the result of the previous owner's last
	// attempt, which died with its process: the message is
	// dead-lettered without a run.
	crashed *delivery.Result
}

// laneOf is the lane of a message under order: messages of one lane run
// one at a time, in the order they were added.
func laneOf(order Order, partition int32, key []byte) string {
	switch order {
	case OrderPartition:
		return strconv.Itoa(int(partition))
	case OrderKey:
		if key != nil {
			return strconv.Itoa(int(partition)) + "/" + string(key)
		}
	}
	return ""
}

// lanes is a deployment's scheduler: it keeps the runnable messages in a
// queue, in arrival order, and holds a message back while an earlier
// message of its lane runs or waits for its retry. A message leaves its
// lane with done, which makes the next one of the lane runnable.
type lanes struct {
	mu     sync.Mutex
	cond   *sync.Cond
	ready  []*item
	queued map[string][]*item // waiting behind the running message of their lane
	busy   map[string]bool    // lanes with a running (or retrying) message
	closed bool
}

func newLanes() *lanes {
	l := &lanes{queued: map[string][]*item{}, busy: map[string]bool{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// add takes a new message: runnable now, or queued behind its lane.
func (l *lanes) add(it *item) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.claim(it) {
		l.push(it)
	}
}

// addAfter takes a new message that may run only after wait (its backoff,
// from a failed attempt recorded by a previous owner). Its lane is held
// meanwhile.
func (l *lanes) addAfter(it *item, wait time.Duration) {
	l.mu.Lock()
	ok := l.claim(it)
	l.mu.Unlock()
	if ok {
		time.AfterFunc(wait, func() { l.retry(it) })
	}
}

// retryAfter makes a message that failed an attempt runnable again after
// wait, still holding its lane.
func (l *lanes) retryAfter(it *item, wait time.Duration) {
	time.AfterFunc(wait, func() { l.retry(it) })
}

func (l *lanes) retry(it *item) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.push(it)
}

// claim takes it's lane for it, or queues it behind the lane's holder
// and returns false. Called with mu held.
func (l *lanes) claim(it *item) bool {
	if it.lane == "" {
		return true
	}
	if l.busy[it.lane] {
		l.queued[it.lane] = append(l.queued[it.lane], it)
		return false
	}
	l.busy[it.lane] = true
	return true
}

func (l *lanes) push(it *item) {
	l.ready = append(l.ready, it)
	l.cond.Signal()
}

// next waits for a runnable message; false once closed.
func (l *lanes) next() (*item, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.ready) == 0 && !l.closed {
		l.cond.Wait()
	}
	if l.closed {
		return nil, false
	}
	it := l.ready[0]
	l.ready[0] = nil
	l.ready = l.ready[1:]
	return it, true
}

// runnable is how many messages may run now and wait for dispatch.
func (l *lanes) runnable() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ready)
}

// done releases it's lane: the next message of the lane becomes runnable.
func (l *lanes) done(it *item) {
	if it.lane == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queued[it.lane]
	if len(q) == 0 {
		delete(l.busy, it.lane)
		return
	}
	if len(q) == 1 {
		delete(l.queued, it.lane)
	} else {
		l.queued[it.lane] = q[1:]
	}
	l.push(q[0])
}

// close wakes next for good.
func (l *lanes) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.cond.Broadcast()
}

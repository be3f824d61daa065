package franzgo

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"kraftwerk.dev/tests/go/internal/kwtest"
)

// callTimeout bounds one admin or produce call, so a request the broker ignores fails the test
// instead of hanging it.
const callTimeout = 30 * time.Second

// newClient returns a kgo client seeded with the broker, closed when the test ends.
func newClient(t *testing.T, b *kwtest.Broker, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{
		kgo.SeedBrokers(b.Addr),
		kgo.RequestTimeoutOverhead(10 * time.Second),
		kgo.RetryTimeout(callTimeout),
	}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo.NewClient: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// newAdmin returns a kadm client over its own kgo client.
func newAdmin(t *testing.T, b *kwtest.Broker) *kadm.Client {
	t.Helper()
	return kadm.NewClient(newClient(t, b))
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with replication factor 1, fails the test on any error, and waits
// until every partition answers ListOffsets.
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32) {
	t.Helper()
	resp, err := adm.CreateTopics(ctxFor(t, callTimeout), partitions, 1, nil, topic)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", topic, err)
	}
	r, ok := resp[topic]
	if !ok {
		t.Fatalf("CreateTopics: no answer for %s: %v", topic, resp)
	}
	if r.Err != nil {
		t.Fatalf("CreateTopics %s: %v (%s)", topic, r.Err, r.ErrMessage)
	}
	if r.NumPartitions != partitions {
		t.Fatalf("CreateTopics %s: %d partitions, want %d", topic, r.NumPartitions, partitions)
	}
	// CreateTopics may answer before every partition is served (Apache Kafka itself says
	// NOT_LEADER for a moment on a busy machine); the tests are not about that window.
	eventually(t, callTimeout, "topic "+topic+" served on every partition", func() bool {
		listed, err := adm.ListEndOffsets(ctxFor(t, callTimeout), topic)
		if err != nil || len(listed[topic]) != int(partitions) {
			return false
		}
		for _, o := range listed[topic] {
			if o.Err != nil {
				return false
			}
		}
		return true
	})
}

// endOffsets lists the log end offset of every partition of topic.
func endOffsets(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	listed, err := adm.ListEndOffsets(ctxFor(t, callTimeout), topic)
	if err != nil {
		t.Fatalf("ListEndOffsets: %v", err)
	}
	out := map[int32]int64{}
	for p, o := range listed[topic] {
		if o.Err != nil {
			t.Fatalf("ListEndOffsets %s/%d: %v", topic, p, o.Err)
		}
		out[p] = o.Offset
	}
	return out
}

// committedOffsets fetches the group's committed offsets for topic.
func committedOffsets(t *testing.T, adm *kadm.Client, group, topic string) map[int32]int64 {
	t.Helper()
	resp, err := adm.FetchOffsets(ctxFor(t, callTimeout), group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	out := map[int32]int64{}
	for p, o := range resp[topic] {
		if o.Err != nil {
			t.Fatalf("FetchOffsets %s %s/%d: %v", group, topic, p, o.Err)
		}
		out[p] = o.At
	}
	return out
}

// eventually polls cond every 100ms until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for: %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package franzgo

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kraftwerk.dev/tests/go/internal/kwtest"
)

// TestGroupConsumerReceivesAll: one kgo.ConsumerGroup member receives every record exactly once,
// the group is described as Stable with that member owning every partition, and after commits
// the group's offsets equal the log end offsets.
func TestGroupConsumerReceivesAll(t *testing.T) {
	b := kwtest.Start(t)
	adm := newAdmin(t, b)
	const topic, group, partitions, count = "group-all", "group-all-readers", 4, 300
	createTopic(t, adm, topic, partitions)

	producer := newClient(t, b, kgo.DefaultProduceTopic(topic))
	records := make([]*kgo.Record, count)
	for i := range records {
		records[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	if err := producer.ProduceSync(ctxFor(t, callTimeout), records...).FirstErr(); err != nil {
		t.Fatalf("ProduceSync: %v", err)
	}

	consumer := newClient(t, b,
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second))
	seen := map[string]int{}
	ctx := ctxFor(t, 90*time.Second)
	for len(seen) < count && ctx.Err() == nil {
		fetches := consumer.PollFetches(ctx)
		// A group consumer surfaces only errors it cannot retry (e.g. a missing group API).
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch %s/%d: %v", topic, p, err)
			}
		})
		fetches.EachRecord(func(r *kgo.Record) { seen[string(r.Value)]++ })
		if err := consumer.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	if len(seen) != count {
		t.Fatalf("group consumer got %d distinct records, want %d", len(seen), count)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times to a sole member", v, n)
		}
	}

	described, err := adm.DescribeGroups(ctxFor(t, callTimeout), group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	d, ok := described[group]
	if !ok || d.Err != nil {
		t.Fatalf("DescribeGroups %s: %+v", group, d)
	}
	if d.State != "Stable" || d.ProtocolType != "consumer" || len(d.Members) != 1 {
		t.Fatalf("group %s: state %q, protocol type %q, %d members; want Stable, consumer, 1",
			group, d.State, d.ProtocolType, len(d.Members))
	}
	if got := d.AssignedPartitions()[topic]; len(got) != partitions {
		t.Fatalf("sole member owns %d partitions, want %d", len(got), partitions)
	}

	ends := endOffsets(t, adm, topic)
	committed := committedOffsets(t, adm, group, topic)
	for p := int32(0); p < partitions; p++ {
		if committed[p] != ends[p] {
			t.Errorf("partition %d: committed %d, end %d", p, committed[p], ends[p])
		}
	}
}

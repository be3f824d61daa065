package franzgo

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kraftwerk.dev/tests/go/internal/kwtest"
)

// TestProduceConsumeRoundTrip produces keyed records with headers and reads them back without a
// group: offsets must be dense per partition, and key, value, header, partition and offset must
// match what the producer was told.
func TestProduceConsumeRoundTrip(t *testing.T) {
	b := kwtest.Start(t)
	for _, tc := range []struct {
		name string
		opts []kgo.Opt
	}{
		// franz-go's default producer is idempotent (InitProducerId, sequence numbers).
		{"default-idempotent", nil},
		// Without idempotence, to tell a Produce problem from an InitProducerId one.
		{"idempotence-off", []kgo.Opt{kgo.DisableIdempotentWrite(), kgo.RequiredAcks(kgo.AllISRAcks())}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := "roundtrip-" + tc.name
			const partitions, count = 3, 200
			createTopic(t, newAdmin(t, b), topic, partitions)

			producer := newClient(t, b, append(tc.opts, kgo.DefaultProduceTopic(topic))...)
			records := make([]*kgo.Record, count)
			for i := range records {
				records[i] = &kgo.Record{
					Key:     []byte(fmt.Sprintf("key-%d", i%11)),
					Value:   []byte(fmt.Sprintf("value-%d", i)),
					Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))}},
				}
			}
			results := producer.ProduceSync(ctxFor(t, callTimeout), records...)
			if err := results.FirstErr(); err != nil {
				t.Fatalf("ProduceSync: %v", err)
			}
			type placed struct {
				partition int32
				offset    int64
			}
			want := map[string]placed{}
			next := map[int32]int64{}
			for i, r := range results {
				rec := r.Record
				if rec.Offset != next[rec.Partition] {
					t.Fatalf("record %d: partition %d offset %d, want %d", i, rec.Partition, rec.Offset, next[rec.Partition])
				}
				next[rec.Partition]++
				want[string(rec.Value)] = placed{rec.Partition, rec.Offset}
			}
			if len(next) < 2 {
				t.Fatalf("11 keys should spread over more than one partition: %v", next)
			}
			for p, end := range endOffsets(t, newAdmin(t, b), topic) {
				if end != next[p] {
					t.Errorf("partition %d: end offset %d, produced %d", p, end, next[p])
				}
			}

			consumer := newClient(t, b,
				kgo.ConsumeTopics(topic),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxWait(200*time.Millisecond))
			got := map[string]*kgo.Record{}
			ctx := ctxFor(t, 60*time.Second)
			for len(got) < count && ctx.Err() == nil {
				fetches := consumer.PollFetches(ctx)
				fetches.EachError(func(topic string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("fetch %s/%d: %v", topic, p, err)
					}
				})
				fetches.EachRecord(func(r *kgo.Record) {
					if _, dup := got[string(r.Value)]; dup {
						t.Errorf("duplicate %s", r.Value)
					}
					got[string(r.Value)] = r
				})
			}
			if len(got) != count {
				t.Fatalf("read back %d records, want %d", len(got), count)
			}
			for i := 0; i < count; i++ {
				v := fmt.Sprintf("value-%d", i)
				r, w := got[v], want[v]
				if r == nil {
					t.Fatalf("missing %s", v)
				}
				if string(r.Key) != fmt.Sprintf("key-%d", i%11) {
					t.Errorf("%s: key %q", v, r.Key)
				}
				if r.Partition != w.partition || r.Offset != w.offset {
					t.Errorf("%s: at %d/%d, producer was told %d/%d", v, r.Partition, r.Offset, w.partition, w.offset)
				}
				if len(r.Headers) != 1 || r.Headers[0].Key != "seq" || string(r.Headers[0].Value) != strconv.Itoa(i) {
					t.Errorf("%s: headers %v", v, r.Headers)
				}
				if r.Timestamp.IsZero() || r.Timestamp.Before(time.Now().Add(-time.Hour)) {
					t.Errorf("%s: timestamp %v not preserved", v, r.Timestamp)
				}
			}
		})
	}
}

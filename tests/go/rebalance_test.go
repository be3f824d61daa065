package franzgo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"kraftwerk.dev/tests/go/internal/kwtest"
)

// groupTracker is what the members of one group report, for the test to judge from outside:
// which partitions each member owns, how often each value was delivered, and which values were
// in a batch whose commit failed (the only ones at-least-once may deliver twice).
type groupTracker struct {
	mu          sync.Mutex
	owned       map[string]map[int32]bool
	deliveries  map[string]int
	uncommitted map[string]bool
	errs        []error
}

func newGroupTracker() *groupTracker {
	return &groupTracker{
		owned:       map[string]map[int32]bool{},
		deliveries:  map[string]int{},
		uncommitted: map[string]bool{},
	}
}

func (g *groupTracker) setOwned(member string, parts []int32, own bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.owned[member] == nil {
		g.owned[member] = map[int32]bool{}
	}
	for _, p := range parts {
		if own {
			g.owned[member][p] = true
		} else {
			delete(g.owned[member], p)
		}
	}
}

func (g *groupTracker) forget(member string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.owned, member)
}

// balanced reports whether exactly members own partitions 0..n-1 between them, each at least
// one, none twice.
func (g *groupTracker) balanced(members []string, n int32) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	seen := map[int32]bool{}
	for _, m := range members {
		if len(g.owned[m]) == 0 {
			return false
		}
		for p := range g.owned[m] {
			if seen[p] {
				return false
			}
			seen[p] = true
		}
	}
	if len(seen) != int(n) {
		return false
	}
	for p := int32(0); p < n; p++ {
		if !seen[p] {
			return false
		}
	}
	return true
}

func (g *groupTracker) ownership() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, len(g.owned))
	for m := range g.owned {
		names = append(names, m)
	}
	sort.Strings(names)
	s := ""
	for _, m := range names {
		ps := []int{}
		for p := range g.owned[m] {
			ps = append(ps, int(p))
		}
		sort.Ints(ps)
		s += fmt.Sprintf("%s=%v ", m, ps)
	}
	return s
}

func (g *groupTracker) distinct() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.deliveries)
}

func (g *groupTracker) firstErr() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		return g.errs[0]
	}
	return nil
}

// member is one kgo.ConsumerGroup client with its poll loop. Rebalances are blocked while a
// polled batch is processed and committed (BlockRebalanceOnPoll + AllowRebalance), the
// documented franz-go way to hand partitions over without duplicates.
type member struct {
	name   string
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

func startMember(t *testing.T, b *kwtest.Broker, g *groupTracker, group, topic, name string) *member {
	t.Helper()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Addr),
		kgo.ClientID(name),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.FetchMaxWait(200*time.Millisecond),
		kgo.SessionTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.setOwned(name, m[topic], true)
		}),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.setOwned(name, m[topic], false)
		}),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
			g.setOwned(name, m[topic], false)
		}),
	)
	if err != nil {
		t.Fatalf("kgo.NewClient(%s): %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, cl: cl, cancel: cancel, done: make(chan struct{})}
	go m.loop(ctx, g)
	t.Cleanup(m.leave)
	return m
}

func (m *member) loop(ctx context.Context, g *groupTracker) {
	defer close(m.done)
	for {
		fetches := m.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			m.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			g.mu.Lock()
			g.errs = append(g.errs, fmt.Errorf("%s: fetch %s/%d: %w", m.name, topic, p, err))
			g.mu.Unlock()
		})
		recs := fetches.Records()
		if len(recs) > 0 {
			g.mu.Lock()
			for _, r := range recs {
				g.deliveries[string(r.Value)]++
			}
			g.mu.Unlock()
			if err := m.cl.CommitRecords(ctx, recs...); err != nil {
				g.mu.Lock()
				for _, r := range recs {
					g.uncommitted[string(r.Value)] = true
				}
				g.mu.Unlock()
			}
		}
		m.cl.AllowRebalance()
	}
}

// leave stops the poll loop and closes the client, which sends LeaveGroup. Idempotent.
func (m *member) leave() {
	select {
	case <-m.done:
		return
	default:
	}
	m.cancel()
	<-m.done
	m.cl.Close()
}

// TestRebalanceMemberLeavesAndJoins: a franz-go member consumes alone, a second member joins
// (partitions are split), leaves (the first takes everything back), and a third joins again.
// Records produced in every phase are all delivered; a record is delivered twice only if its
// commit failed; the group's final offsets reach the end of the log.
func TestRebalanceMemberLeavesAndJoins(t *testing.T) {
	b := kwtest.Start(t)
	adm := newAdmin(t, b)
	const topic, group, partitions, perPhase = "rebalance", "rebalance-group", int32(4), 100
	createTopic(t, adm, topic, partitions)
	producer := newClient(t, b, kgo.DefaultProduceTopic(topic))
	g := newGroupTracker()
	produced := 0
	produce := func() {
		t.Helper()
		recs := make([]*kgo.Record, perPhase)
		for i := range recs {
			recs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("k%d", produced+i)), Value: []byte(fmt.Sprintf("v%d", produced+i))}
		}
		if err := producer.ProduceSync(ctxFor(t, callTimeout), recs...).FirstErr(); err != nil {
			t.Fatalf("ProduceSync: %v", err)
		}
		produced += perPhase
	}
	settle := 60 * time.Second
	awaitBalanced := func(what string, members ...string) {
		t.Helper()
		eventually(t, settle, what, func() bool {
			if err := g.firstErr(); err != nil {
				t.Fatalf("member error: %v", err)
			}
			return g.balanced(members, partitions)
		})
		t.Logf("%s: %s", what, g.ownership())
	}
	awaitDelivered := func() {
		t.Helper()
		eventually(t, settle, fmt.Sprintf("%d records delivered", produced), func() bool {
			if err := g.firstErr(); err != nil {
				t.Fatalf("member error: %v", err)
			}
			return g.distinct() >= produced
		})
	}

	a := startMember(t, b, g, group, topic, "member-a")
	awaitBalanced("member-a alone owns all partitions", "member-a")
	produce()
	awaitDelivered()

	bm := startMember(t, b, g, group, topic, "member-b")
	awaitBalanced("member-b joined: partitions split", "member-a", "member-b")
	produce()
	awaitDelivered()

	described, err := adm.DescribeGroups(ctxFor(t, callTimeout), group)
	if err != nil {
		t.Fatalf("DescribeGroups: %v", err)
	}
	if d := described[group]; d.Err != nil || len(d.Members) != 2 || len(d.AssignedPartitions()[topic]) != int(partitions) {
		t.Fatalf("DescribeGroups with two members: state %q, %d members, assigned %v, err %v",
			d.State, len(d.Members), d.AssignedPartitions(), d.Err)
	}

	bm.leave()
	g.forget("member-b")
	awaitBalanced("member-b left: member-a owns all again", "member-a")
	produce()
	awaitDelivered()

	startMember(t, b, g, group, topic, "member-c")
	awaitBalanced("member-c joined: partitions split again", "member-a", "member-c")
	produce()
	awaitDelivered()

	a.leave()
	g.forget("member-a")
	awaitBalanced("member-a left: member-c owns all", "member-c")

	g.mu.Lock()
	for i := 0; i < produced; i++ {
		if g.deliveries[fmt.Sprintf("v%d", i)] == 0 {
			t.Errorf("v%d never delivered", i)
		}
	}
	if len(g.deliveries) != produced {
		t.Errorf("%d distinct values delivered, produced %d", len(g.deliveries), produced)
	}
	for v, n := range g.deliveries {
		if n > 1 && !g.uncommitted[v] {
			t.Errorf("%s delivered %d times although its offset was committed", v, n)
		}
	}
	g.mu.Unlock()

	ends := endOffsets(t, adm, topic)
	committed := committedOffsets(t, adm, group, topic)
	for p := int32(0); p < partitions; p++ {
		if committed[p] != ends[p] {
			t.Errorf("partition %d: committed %d, end %d", p, committed[p], ends[p])
		}
	}
	if err := g.firstErr(); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("member error: %v", err)
	}
}

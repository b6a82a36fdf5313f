package kwire

import (
	"testing"
)

func TestSmoke(t *testing.T) {
	c, _ := testClient(t)
	ctx := testCtx(t)
	topic := topicName(t)
	recs := []*Record{{Topic: topic, Key: []byte("k"), Value: []byte("v"), Headers: []Header{{"h", []byte("x")}}}}
	if err := c.Produce(ctx, recs...); err != nil {
		t.Fatal(err)
	}
	t.Logf("produced at %d/%d", recs[0].Partition, recs[0].Offset)
	m, err := c.Join(ctx, "g-"+topic, topic)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("member %s gen %d assigned %v", m.MemberID(), m.Generation(), m.Assigned())
	r, err := m.Take(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("took %+v", r)
	if err := m.Commit(ctx, r.Partition, r.Offset+1, "meta"); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := c.FetchCommitted(ctx, "g-"+topic, topic, r.Partition)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("committed %+v", got)
}

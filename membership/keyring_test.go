package membership

import (
	"bytes"
	"encoding/base64"
	"errors"
	"testing"
	"time"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func TestGossipKeyKeepsOutsidersOut(t *testing.T) {
	keyed := func(keys ...[]byte) func(*Config) { return func(c *Config) { c.GossipKeys = keys } }
	a := startMember(t, "k1", 0, keyed(key(1)))
	plain := startMember(t, "p1", 0, nil)
	wrong := startMember(t, "w1", 0, keyed(key(2)))
	if n, err := plain.Join([]string{a.Addr()}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("a member without the key joined: %d, %v", n, err)
	}
	if n, err := wrong.Join([]string{a.Addr()}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("a member with another key joined: %d, %v", n, err)
	}
	// A member that also accepts a new key (rotation step 1) joins.
	b := startMember(t, "k2", 0, keyed(key(1), key(3)))
	if n, err := b.Join([]string{a.Addr()}); err != nil || n != 1 {
		t.Fatalf("member with the key could not join: %d, %v", n, err)
	}
	both := []*tmember{a, b}
	for _, m := range both {
		waitAllAlive(t, m, both, joinBound)
	}
	// Rotation: both take key 3 as primary, then drop key 1; they stay
	// together and a member with only the old key is now refused.
	for _, m := range both {
		if err := m.SetGossipKeys([][]byte{key(3), key(1)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range both {
		if err := m.SetGossipKeys([][]byte{key(3)}); err != nil {
			t.Fatal(err)
		}
	}
	old := startMember(t, "o1", 0, keyed(key(1)))
	if n, err := old.Join([]string{a.Addr()}); !errors.Is(err, ErrJoin) || n != 0 {
		t.Errorf("a member with the retired key joined: %d, %v", n, err)
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range both {
		waitAllAlive(t, m, both, joinBound)
		for _, x := range m.Members() {
			if x.ID[0] != 'k' {
				t.Errorf("%s lists outsider %s", m.id, x.ID)
			}
		}
	}
	if err := plain.SetGossipKeys([][]byte{key(1)}); err == nil {
		t.Error("turned encryption on at run time")
	}
}

func TestParseGossipKeys(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(key(7))
	keys, err := ParseGossipKeys([]byte("# primary\n" + k + "\n\n" + base64.StdEncoding.EncodeToString(key(8)) + "\n"))
	if err != nil || len(keys) != 2 || !bytes.Equal(keys[0], key(7)) {
		t.Fatalf("%v %v", keys, err)
	}
	for _, bad := range []string{"", "# none\n", "not base64!\n", base64.StdEncoding.EncodeToString([]byte("short")) + "\n"} {
		if _, err := ParseGossipKeys([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

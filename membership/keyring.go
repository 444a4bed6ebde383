package membership

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption uses memberlist's keyring (AES-GCM on every packet and
// stream, as Consul's -encrypt). Config.GossipKeys lists the keys: the
// first encrypts, all of them decrypt. Rotation, done on every member:
// add the new key at the end; then make it first; then remove the old one.
// Each step keeps every pair of members able to read each other.

// ParseGossipKeys reads a gossip key file: one base64 key per line (16, 24
// or 32 bytes; dynago cert tooling writes 32), blank lines and lines
// starting with # ignored. The first key is the primary.
func ParseGossipKeys(data []byte) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("gossip key file line %d: not base64: %v", i+1, err)
		}
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("gossip key file line %d: %v", i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("gossip key file holds no key")
	}
	return keys, nil
}

func newKeyring(keys [][]byte) (*memberlist.Keyring, error) {
	for _, k := range keys {
		if err := memberlist.ValidateKey(k); err != nil {
			return nil, fmt.Errorf("%w: gossip key: %v", ErrConfig, err)
		}
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("%w: gossip keys: %v", ErrConfig, err)
	}
	return kr, nil
}

// SetGossipKeys replaces the keyring's keys (on SIGHUP, after the key file
// changed): keys[0] becomes primary, keys not listed are dropped. It fails
// on a member started without encryption: turning encryption on or off
// needs a restart of every member.
func (m *Membership) SetGossipKeys(keys [][]byte) error {
	kr := m.mlc.Keyring
	if kr == nil {
		return fmt.Errorf("%w: gossip encryption was not enabled at start", ErrConfig)
	}
	if len(keys) == 0 {
		return fmt.Errorf("%w: no gossip key", ErrConfig)
	}
	for _, k := range keys {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("%w: gossip key: %v", ErrConfig, err)
		}
	}
	if err := kr.UseKey(keys[0]); err != nil {
		return err
	}
	for _, old := range kr.GetKeys() {
		keep := false
		for _, k := range keys {
			keep = keep || bytes.Equal(k, old)
		}
		if !keep {
			if err := kr.RemoveKey(old); err != nil {
				return err
			}
		}
	}
	return nil
}

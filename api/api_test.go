package api

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestContextCodec(t *testing.T) {
	ctx := []byte{0x01, 0xfb, 0xff, 0x00, 'a'}
	tok := EncodeContext(ctx)
	if tok != "Afv_AGE" {
		t.Fatalf("EncodeContext = %q, want unpadded base64url %q", tok, "Afv_AGE")
	}
	for _, in := range []string{tok, tok + "=", tok + "=="} {
		got, err := DecodeContext(in)
		if err != nil || !bytes.Equal(got, ctx) {
			t.Errorf("DecodeContext(%q) = %x, %v; want %x", in, got, err, ctx)
		}
	}
	if got, err := DecodeContext(""); got != nil || err != nil {
		t.Errorf("DecodeContext(\"\") = %x, %v; want no context", got, err)
	}
	if EncodeContext(nil) != "" {
		t.Errorf("EncodeContext(nil) = %q, want \"\"", EncodeContext(nil))
	}
	// Standard base64's '+' and '/' are not base64url.
	for _, bad := range []string{"Afv/AGE", "Afv+AGE", "A", "!!!!"} {
		if _, err := DecodeContext(bad); err == nil {
			t.Errorf("DecodeContext(%q) succeeded, want an error", bad)
		}
	}
}

// The JSON field names are a contract external clients depend on
// (docs/API.md): an error body keeps acks 0 but drops absent ones.
func TestErrorJSON(t *testing.T) {
	zero, two := 0, 2
	for _, tc := range []struct {
		in   Error
		want string
	}{
		{Error{Error: "no", Code: CodeBadKey}, `{"error":"no","code":"bad_key"}`},
		{Error{Error: "q", Code: CodeQuorumFailed, Acks: &zero, Required: &two}, `{"error":"q","code":"quorum_failed","acks":0,"required":2}`},
	} {
		b, err := json.Marshal(tc.in)
		if err != nil || string(b) != tc.want {
			t.Errorf("Marshal = %s, %v; want %s", b, err, tc.want)
		}
	}
}

func TestPlanJSONFieldNames(t *testing.T) {
	p := Plan{RingVersion: 3, Moves: []Move{{Partition: 1, From: "a", To: "b"}},
		Transfers: []Transfer{{Move: Move{Partition: 1, From: "a", To: "b"}, Keys: 0}}}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"ring_version":3,"joining":null,"leaving":null,"moves":[{"partition":1,"from":"a","to":"b"}],` +
		`"transfers":[{"partition":1,"from":"a","to":"b","keys":0}],"partitions_before":null,"partitions_after":null,"committed":false}`
	if string(b) != want {
		t.Errorf("Marshal(Plan) =\n%s\nwant\n%s", b, want)
	}
}

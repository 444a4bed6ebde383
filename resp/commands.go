package resp

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tidwall/redcon"

	"github.com/dynago/dynago/buildinfo"
	"github.com/dynago/dynago/httpapi"
	"github.com/dynago/dynago/node"
)

// connState is one connection's state, owned by its goroutine.
type connState struct {
	lc          *limitConn
	role        string // "" until authenticated
	certChecked bool   // the client certificate, if any, was looked at
	certRole    string // the verified client certificate's role, "" for none
	// authToken is the token the role came from (AUTH), "" when it came
	// from the certificate; authGen is Config.AuthGeneration when it was
	// checked. A changed generation (tokens reloaded) makes the next
	// command check the token again, so that a revoked token stops
	// working on open connections too.
	authToken string
	authGen   uint64
	name      string // CLIENT SETNAME
	id        int64
	sess      *connSession // SESSION START|RESUME; nil outside a session
	batch     batch        // reused by each call of serveCommand, to save allocations
}

var nextClientID atomic.Int64

// job is one data command of a pipeline wave: the keys it reads and
// writes (for ordering, see the package doc) and what it does.
type job struct {
	reads, writes [][]byte
	// run does the command; every request it sends goes through x.do, so
	// that it carries the connection's session (x.sess) when there is one.
	// A command of exactly one request has req and render instead: a wave
	// can then send its requests to the core together (Batcher).
	// render is a plain function, not a closure, and the batch reuses its
	// jobs and their out buffers: a GET or SET then allocates nothing of
	// its own here.
	run    func(ctx context.Context, x exec, out []byte) []byte
	req    node.Request
	rep    node.Reply // req's reply, when the job ran alone
	render renderFunc
	sess   *connSession // the connection's session when the job was queued
	out    []byte
	keys   [1][]byte // backs reads or writes of a single job
}

// renderFunc appends the reply of a single-request job to out.
type renderFunc func(s *Server, req *node.Request, rep *node.Reply, out []byte) []byte

// maxKeptOut bounds the reply buffer a recycled job keeps: one huge reply
// must not pin its memory for the connection's lifetime.
const maxKeptOut = 16 << 10

// newJob returns a cleared job, reused from an earlier wave when one is free.
func (b *batch) newJob() *job {
	if n := len(b.free); n > 0 {
		j := b.free[n-1]
		b.free = b.free[:n-1]
		return j
	}
	return &job{}
}

// recycle clears j and keeps it for a later command.
func (b *batch) recycle(j *job) {
	out := j.out[:0]
	if cap(out) > maxKeptOut {
		out = nil
	}
	*j = job{out: out}
	b.free = append(b.free, j)
}

// single returns a job of one request, whose reply render writes.
func (b *batch) single(req node.Request, render renderFunc) *job {
	j := b.newJob()
	j.req, j.render = req, render
	j.keys[0] = req.Key
	if req.Op == node.OpGet {
		j.reads = j.keys[:]
	} else {
		j.writes = j.keys[:]
	}
	return j
}

// do runs the job alone.
func (j *job) do(ctx context.Context, s *Server, x exec) {
	if j.render != nil {
		j.rep = x.do(ctx, j.req) // in the job: a local would escape to the heap
		j.out = j.render(s, &j.req, &j.rep, j.out[:0])
		return
	}
	j.out = j.run(ctx, x, nil)
}

// out is one reply of a batch, in command order: ready bytes, or a job
// whose reply is ready once its wave ran.
type out struct {
	b []byte
	j *job
}

// batch answers the commands redcon read in one go (a pipeline, or a
// single command).
type batch struct {
	s    *Server
	ss   *connState
	c    redcon.Conn
	outs []out
	wave []*job
	free []*job // jobs of earlier waves, for newJob
	// track: reads and write hold the wave's keys (conflicts filled them
	// for a second command; note keeps them current until the wave runs).
	track bool
	// reqs and reps carry a wave's single-request jobs through Batcher;
	// reused from wave to wave.
	reqs  []node.Request
	reps  []node.Reply
	reads map[string]struct{} // keys the wave reads; nil until needed
	write map[string]struct{} // keys the wave writes
	quit  bool
}

// serveCommand is redcon's handler. It takes the rest of the pipeline
// redcon has already parsed, so that their data commands can be in flight
// together.
func (s *Server) serveCommand(c redcon.Conn, first redcon.Command) {
	ss, _ := c.Context().(*connState)
	if ss == nil {
		ss = &connState{}
		c.SetContext(ss)
	}
	if ss.lc != nil {
		ss.lc.reset()
		if !ss.certChecked {
			// The TLS handshake is done by now: a command was read.
			ss.certChecked = true
			if cert := ss.lc.verifiedCert(); cert != nil && s.cfg.CertRole != nil {
				ss.certRole = s.cfg.CertRole(cert)
				ss.role = ss.certRole
			}
		}
	}
	b := &ss.batch
	b.s, b.ss, b.c, b.quit = s, ss, c, false
	b.command(first.Args)
	for _, cmd := range c.ReadPipeline() {
		if b.quit {
			break
		}
		b.command(cmd.Args)
	}
	b.runWave()
	if b.quit {
		c.Close() // flushes the replies first
	}
}

func (b *batch) reply(r []byte) { b.outs = append(b.outs, out{b: r}) }

func (b *batch) errorReply(msg string) { b.reply(redcon.AppendError(nil, msg)) }

// command answers one command or queues it in the wave.
func (b *batch) command(args [][]byte) {
	// Lower-case the name in a stack buffer: m[string(b)] does not
	// allocate, and this runs for every command.
	var lower [16]byte
	n := copy(lower[:], args[0])
	for i, c := range lower[:n] {
		if 'A' <= c && c <= 'Z' {
			lower[i] = c + 'a' - 'A'
		}
	}
	if len(args[0]) > len(lower) {
		n = 0 // longer than any command: unknown
	}
	spec, ok := lookup(lower[:n])
	if name := string(lower[:n]); name == "post" || name == "host:" {
		// An HTTP request: a web page making a browser POST to this port
		// to smuggle commands in its body (cross-protocol scripting).
		// Redis closes such connections without an answer; so does this.
		b.s.cfg.Logger.Warn("resp: HTTP request on the RESP port; closing the connection (possible cross-protocol attack)", "remote", b.c.RemoteAddr())
		b.quit = true
		return
	}
	if !ok {
		b.errorReply(fmt.Sprintf("ERR unknown command '%.64s', with args beginning with: %s", args[0], argsPreview(args[1:])))
		return
	}
	if len(args) < spec.min || (spec.max > 0 && len(args) > spec.max) {
		b.errorReply(fmt.Sprintf("ERR wrong number of arguments for '%s' command", string(lower[:n])))
		return
	}
	if spec.need != "" && b.s.cfg.RequireAuth {
		b.recheckToken()
		if b.ss.role == "" {
			b.errorReply("NOAUTH Authentication required.")
			return
		}
		if !httpapi.RoleAllows(b.ss.role, spec.need) {
			b.errorReply(fmt.Sprintf("NOPERM role %s may not run '%s'; it needs %s", b.ss.role, string(lower[:n]), spec.need))
			return
		}
	}
	if spec.conn != nil {
		b.reply(spec.conn(b, args))
		return
	}
	j, refusal := spec.data(b, args)
	if j == nil {
		b.reply(refusal)
		return
	}
	// Session commands run the wave before they change b.ss.sess, so the
	// session a job is queued under is the one it runs under.
	j.sess = b.ss.sess
	b.queue(j)
}

// Specs of the commands a load mostly consists of, looked up without the
// map: a string-keyed map lookup was 2 % of a node's CPU under GETs.
var getSpec, setSpec = commands["get"], commands["set"]

// lookup returns the spec of a lower-case command name.
func lookup(name []byte) (spec, bool) {
	switch string(name) {
	case "get":
		return getSpec, true
	case "set":
		return setSpec, true
	}
	s, ok := commands[string(name)]
	return s, ok
}

// argsPreview quotes the first arguments of an unknown command, as Redis
// does, bounded so that a huge argument is not echoed back.
func argsPreview(args [][]byte) string {
	var sb strings.Builder
	for i, a := range args {
		if i == 3 || sb.Len() > 128 {
			break
		}
		fmt.Fprintf(&sb, "'%.32s' ", a)
	}
	return sb.String()
}

// queue adds j to the wave, running the wave first when j must see its
// effects (or it is full).
func (b *batch) queue(j *job) {
	if len(b.wave) > 0 && (len(b.wave) >= b.s.cfg.MaxInFlight || b.conflicts(j)) {
		b.runWave()
	}
	b.wave = append(b.wave, j)
	b.note(j) // a no-op until a second command needs the key sets
	b.outs = append(b.outs, out{j: j})
}

func (b *batch) note(j *job) {
	if !b.track {
		return
	}
	for _, k := range j.reads {
		b.reads[string(k)] = struct{}{}
	}
	for _, k := range j.writes {
		b.write[string(k)] = struct{}{}
	}
}

// conflicts: j writes a key the wave reads or writes, or reads a key the
// wave writes.
func (b *batch) conflicts(j *job) bool {
	if !b.track {
		if b.reads == nil {
			b.reads, b.write = map[string]struct{}{}, map[string]struct{}{}
		}
		b.track = true
		for _, w := range b.wave {
			b.note(w)
		}
	}
	for _, k := range j.writes {
		if _, ok := b.write[string(k)]; ok {
			return true
		}
		if _, ok := b.reads[string(k)]; ok {
			return true
		}
	}
	for _, k := range j.reads {
		if _, ok := b.write[string(k)]; ok {
			return true
		}
	}
	return false
}

// runWave runs the wave's jobs at once, then writes every reply so far.
func (b *batch) runWave() {
	switch len(b.wave) {
	case 0:
	case 1:
		// The common case, a lone command: no goroutine hand-off.
		j := b.wave[0]
		j.do(b.s.ctx, b.s, b.exec(j))
	default:
		bt, ok := b.s.b.(Batcher)
		var wg sync.WaitGroup
		for _, j := range b.wave {
			if ok && j.render != nil {
				continue // in the batch below
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				j.do(b.s.ctx, b.s, b.exec(j))
			}()
		}
		if ok {
			b.runBatch(bt)
		}
		wg.Wait()
	}
	for _, o := range b.outs {
		if o.j != nil {
			b.c.WriteRaw(o.j.out) // copied into the connection's buffer
			b.recycle(o.j)
		} else {
			b.c.WriteRaw(o.b)
		}
	}
	clear(b.outs) // drop references to replies and jobs already sent
	clear(b.wave)
	b.outs, b.wave = b.outs[:0], b.wave[:0]
	if b.track {
		clear(b.reads)
		clear(b.write)
		b.track = false
	}
}

// runBatch sends the wave's single-request jobs to the core in one batch,
// each carrying its session's floor as exec.do would, and renders their
// replies.
func (b *batch) runBatch(bt Batcher) {
	b.reqs, b.reps = b.reqs[:0], b.reps[:0]
	for _, j := range b.wave {
		if j.render == nil {
			continue
		}
		req := j.req
		if j.sess != nil {
			j.sess.mu.Lock()
			node.WithSession(j.sess.tok, &req)
			j.sess.mu.Unlock()
		}
		b.reqs = append(b.reqs, req)
	}
	b.reps = append(b.reps, make([]node.Reply, len(b.reqs))...)
	bt.DoBatch(b.s.ctx, b.reqs, b.reps)
	i := 0
	for _, j := range b.wave {
		if j.render == nil {
			continue
		}
		if j.sess != nil {
			j.sess.mu.Lock()
			node.ObserveSession(j.sess.tok, b.reqs[i], b.reps[i])
			j.sess.mu.Unlock()
		}
		j.out = j.render(b.s, &j.req, &b.reps[i], j.out[:0])
		i++
	}
	clear(b.reqs) // drop references to keys and values
	clear(b.reps)
}

// spec describes a command: its arity (args including the name; max 0 =
// no limit), the role it needs, and either a connection handler (answers
// at once, in order) or a data handler (validates, and returns a job or a
// refusal).
type spec struct {
	min, max int
	need     string
	conn     func(b *batch, args [][]byte) []byte
	data     func(b *batch, args [][]byte) (*job, []byte)
}

var commands = map[string]spec{
	"ping":   {min: 1, max: 2, conn: cmdPing},
	"quit":   {min: 1, max: 1, conn: cmdQuit},
	"auth":   {min: 2, max: 3, conn: cmdAuth},
	"hello":  {min: 1, conn: cmdHello},
	"echo":   {min: 2, max: 2, need: "read", conn: cmdEcho},
	"select": {min: 2, max: 2, need: "read", conn: cmdSelect},
	"client": {min: 2, need: "read", conn: cmdClient},
	// SESSION needs only read: it changes what this connection's own
	// requests carry, never what they may do.
	"session": {min: 2, max: 3, need: "read", conn: cmdSession},
	"config":  {min: 2, need: "read", conn: cmdConfig},
	"command": {min: 1, need: "read", conn: func(*batch, [][]byte) []byte {
		// No command table: clients (redis-cli's hints) cope with
		// an empty one.
		return redcon.AppendArray(nil, 0)
	}},
	"get":    {min: 2, max: 2, need: "read", data: cmdGet},
	"exists": {min: 2, need: "read", data: cmdExists},
	"dget":   {min: 2, need: "read", data: cmdDGet},
	"set":    {min: 3, need: "write", data: cmdSet},
	"del":    {min: 2, need: "write", data: cmdDel},
	"dset":   {min: 3, need: "write", data: cmdDSet},
	"ddel":   {min: 2, need: "write", data: cmdDDel},
}

// ---- connection commands ----

func cmdPing(_ *batch, args [][]byte) []byte {
	if len(args) == 2 {
		return redcon.AppendBulk(nil, args[1])
	}
	return redcon.AppendString(nil, "PONG")
}

func cmdEcho(_ *batch, args [][]byte) []byte { return redcon.AppendBulk(nil, args[1]) }

func cmdQuit(b *batch, _ [][]byte) []byte {
	b.quit = true
	return redcon.AppendOK(nil)
}

func cmdSelect(_ *batch, args [][]byte) []byte {
	if string(args[1]) != "0" {
		return redcon.AppendError(nil, "ERR DB index is out of range (dynago has one keyspace: 0)")
	}
	return redcon.AppendOK(nil)
}

const errWrongPass = "WRONGPASS invalid username-password pair or user is disabled."

// authenticate sets the session's role from a token; the username of
// Redis 6's form is ignored (a dynago token carries its role).
func (b *batch) authenticate(token []byte) []byte {
	if !b.s.cfg.RequireAuth {
		return redcon.AppendError(nil, "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?")
	}
	if b.s.cfg.Authenticate == nil {
		return redcon.AppendError(nil, errWrongPass)
	}
	// The generation is read before the token is checked: a reload in
	// between makes the next command check the token again.
	gen := b.s.authGeneration()
	role, ok := b.s.cfg.Authenticate(string(token))
	if !ok {
		// Like Redis, a failed AUTH keeps the connection's previous role.
		return redcon.AppendError(nil, errWrongPass)
	}
	b.ss.role, b.ss.authToken, b.ss.authGen = role, string(token), gen
	return nil
}

// recheckToken checks the connection's AUTH token again when the tokens
// may have changed since (Config.AuthGeneration moved): a token removed
// or given another role by a reload takes effect on open connections at
// their next command, not only on new AUTHs. The check is one atomic load
// per command while nothing changes. A revoked token leaves the
// connection with its certificate's role, or none (-NOAUTH).
func (b *batch) recheckToken() {
	ss := b.ss
	if ss.authToken == "" {
		return
	}
	gen := b.s.authGeneration()
	if gen == ss.authGen {
		return
	}
	ss.authGen = gen
	role, ok := "", false
	if b.s.cfg.Authenticate != nil {
		role, ok = b.s.cfg.Authenticate(ss.authToken)
	}
	if !ok {
		b.s.cfg.Logger.Info("resp: the token of an open connection was revoked by a reload", "remote", b.c.RemoteAddr())
		ss.role, ss.authToken = ss.certRole, ""
		return
	}
	ss.role = role
}

func cmdAuth(b *batch, args [][]byte) []byte {
	if e := b.authenticate(args[len(args)-1]); e != nil {
		return e
	}
	return redcon.AppendOK(nil)
}

// cmdHello: HELLO [protover [AUTH username password] [SETNAME name]]. Only
// RESP2 is spoken; RESP3 clients (go-redis by default) get NOPROTO and
// carry on in RESP2, as they do with Redis 5.
func cmdHello(b *batch, args [][]byte) []byte {
	if len(args) > 1 {
		v, err := strconv.Atoi(string(args[1]))
		if err != nil || v < 2 || v > 3 {
			if err != nil {
				return redcon.AppendError(nil, "ERR Protocol version is not an integer or out of range")
			}
			return redcon.AppendError(nil, "NOPROTO unsupported protocol version")
		}
		if v == 3 {
			return redcon.AppendError(nil, "NOPROTO unsupported protocol version: dynago speaks RESP2")
		}
		for i := 2; i < len(args); i++ {
			opt := strings.ToUpper(string(args[i]))
			switch {
			case opt == "AUTH" && i+2 < len(args):
				if e := b.authenticate(args[i+2]); e != nil {
					return e
				}
				i += 2
			case opt == "SETNAME" && i+1 < len(args):
				b.ss.name = string(args[i+1])
				i++
			default:
				return redcon.AppendError(nil, fmt.Sprintf("ERR Syntax error in HELLO option '%.32s'", args[i]))
			}
		}
	}
	if b.s.cfg.RequireAuth && b.ss.role == "" {
		return redcon.AppendError(nil, "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
	}
	if b.ss.id == 0 {
		b.ss.id = nextClientID.Add(1)
	}
	r := redcon.AppendArray(nil, 14)
	r = redcon.AppendBulkString(r, "server")
	r = redcon.AppendBulkString(r, "dynago")
	r = redcon.AppendBulkString(r, "version")
	r = redcon.AppendBulkString(r, buildinfo.Version)
	r = redcon.AppendBulkString(r, "proto")
	r = redcon.AppendInt(r, 2)
	r = redcon.AppendBulkString(r, "id")
	r = redcon.AppendInt(r, b.ss.id)
	r = redcon.AppendBulkString(r, "mode")
	r = redcon.AppendBulkString(r, "standalone")
	r = redcon.AppendBulkString(r, "role")
	r = redcon.AppendBulkString(r, "master")
	r = redcon.AppendBulkString(r, "modules")
	return redcon.AppendArray(r, 0)
}

// cmdClient answers what client libraries send on connecting; the name
// and library information are kept or ignored, never used.
func cmdClient(b *batch, args [][]byte) []byte {
	switch strings.ToUpper(string(args[1])) {
	case "SETNAME":
		if len(args) != 3 {
			return redcon.AppendError(nil, "ERR wrong number of arguments for 'client|setname' command")
		}
		b.ss.name = string(args[2])
		return redcon.AppendOK(nil)
	case "GETNAME":
		if b.ss.name == "" {
			return redcon.AppendNull(nil)
		}
		return redcon.AppendBulkString(nil, b.ss.name)
	case "SETINFO":
		return redcon.AppendOK(nil)
	case "ID":
		if b.ss.id == 0 {
			b.ss.id = nextClientID.Add(1)
		}
		return redcon.AppendInt(nil, b.ss.id)
	}
	return redcon.AppendError(nil, fmt.Sprintf("ERR unknown subcommand '%.32s'", args[1]))
}

// configParams are the Redis parameters CONFIG GET answers, with the value
// that describes dynago in Redis's terms: no snapshots, every write
// durable before its reply (appendfsync always). redis-benchmark reads
// "save" and "appendonly" at start and warns without them.
var configParams = [][2]string{{"save", ""}, {"appendonly", "yes"}, {"appendfsync", "always"}}

// cmdConfig: CONFIG GET pattern... answers the matching configParams as
// name/value pairs. dynago's own configuration is its flags and
// /admin/defaults.
func cmdConfig(_ *batch, args [][]byte) []byte {
	if strings.ToUpper(string(args[1])) == "GET" {
		var pairs []string
		for _, p := range configParams {
			for _, pat := range args[2:] {
				if ok, _ := path.Match(strings.ToLower(string(pat)), p[0]); ok {
					pairs = append(pairs, p[0], p[1])
					break
				}
			}
		}
		r := redcon.AppendArray(nil, len(pairs))
		for _, p := range pairs {
			r = redcon.AppendBulkString(r, p)
		}
		return r
	}
	return redcon.AppendError(nil, fmt.Sprintf("ERR unknown subcommand '%.32s'; dynago is configured by flags and /admin/defaults", args[1]))
}

// ---- data commands ----

// inputError is a refusal of httpapi's shared checks as a RESP error: the
// API code in upper case, then the message.
func inputError(err error) []byte {
	var ie *httpapi.InputError
	if errors.As(err, &ie) {
		return redcon.AppendError(nil, strings.ToUpper(ie.Code)+" "+ie.Msg)
	}
	return redcon.AppendError(nil, "BAD_REQUEST "+err.Error())
}

// replyError is a failed core reply as a RESP error with the API's code.
func (s *Server) replyError(out []byte, req node.Request, rep node.Reply) []byte {
	code, expected := httpapi.ReplyCode(rep.Code)
	if !expected {
		s.cfg.Logger.Error("resp: request failed", "op", req.Op, "key", string(req.Key), "code", rep.Code, "err", rep.Err)
	}
	msg := rep.Err
	if msg == "" {
		msg = rep.Code.String()
	}
	if rep.Code == node.CodeQuorumFailed || rep.Code == node.CodeSessionUnavailable {
		// As in the HTTP body's acks and required; for a write the
		// outcome is unknown.
		msg = fmt.Sprintf("acks=%d required=%d %s", rep.Acks, rep.Required, msg)
	}
	return redcon.AppendError(out, strings.ToUpper(code)+" "+msg)
}

// key checks a key argument with HTTP's rule.
func (s *Server) key(arg []byte) ([]byte, []byte) {
	if err := httpapi.CheckKey(arg, s.cfg.MaxKeySize); err != nil {
		return nil, inputError(err)
	}
	return arg, nil
}

// options parses "NAME value" pairs, names case-insensitive and each at
// most once, from those allowed.
func options(args [][]byte, allowed ...string) (map[string]string, error) {
	opts := map[string]string{}
	for i := 0; i < len(args); i += 2 {
		name := strings.ToUpper(string(args[i]))
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		switch {
		case !ok:
			return nil, &httpapi.InputError{Code: httpapi.CodeBadParameter, Msg: fmt.Sprintf("unknown option %.32q; this command takes %s", args[i], strings.Join(allowed, ", "))}
		case i+1 >= len(args):
			return nil, &httpapi.InputError{Code: httpapi.CodeBadParameter, Msg: fmt.Sprintf("option %s needs a value", name)}
		}
		if _, dup := opts[name]; dup {
			return nil, &httpapi.InputError{Code: httpapi.CodeBadParameter, Msg: fmt.Sprintf("option %s given twice", name)}
		}
		opts[name] = string(args[i+1])
	}
	return opts, nil
}

// request builds a node request from the options R or W, TIMEOUT and
// CONTEXT, with the same checks as HTTP's query parameters and header.
func (s *Server) request(op node.Op, key []byte, opts map[string]string) (node.Request, error) {
	req := node.Request{Op: op, Key: key, Timeout: s.cfg.DefaultTimeout}
	if v, ok := opts["R"]; ok {
		r, err := httpapi.ParseQuorum("R", v)
		if err != nil {
			return req, err
		}
		req.R = r
	}
	if v, ok := opts["W"]; ok {
		w, err := httpapi.ParseQuorum("W", v)
		if err != nil {
			return req, err
		}
		req.W = w
	}
	if v, ok := opts["TIMEOUT"]; ok {
		d, err := httpapi.ParseTimeout(v, s.cfg.MaxTimeout)
		if err != nil {
			return req, err
		}
		req.Timeout = d
	}
	if v, ok := opts["CONTEXT"]; ok {
		ctx, err := httpapi.DecodeContext(key, v)
		if err != nil {
			return req, err
		}
		req.Context = ctx
	}
	return req, nil
}

// live returns the values of a get's live siblings. The core removes
// tombstones already; filtering again guarantees a deleted value is never
// served (as the HTTP API does).
func live(rep node.Reply) [][]byte {
	var vs [][]byte
	for _, sib := range rep.Siblings {
		if !sib.Deleted {
			v := sib.Value
			if v == nil {
				v = []byte{} // an empty value, not a nil reply
			}
			vs = append(vs, v)
		}
	}
	return vs
}

func cmdGet(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	key, e := s.key(args[1])
	if e != nil {
		return nil, e
	}
	return b.single(node.Request{Op: node.OpGet, Key: key, Timeout: s.cfg.DefaultTimeout}, renderGet), nil
}

func renderGet(s *Server, req *node.Request, rep *node.Reply, out []byte) []byte {
	if rep.Code != node.CodeOK && rep.Code != node.CodeNotFound {
		return s.replyError(out, *req, *rep)
	}
	// live's filter, without its slice: most keys have one value.
	var (
		n     int
		value []byte
	)
	for _, sib := range rep.Siblings {
		if !sib.Deleted {
			n++
			value = sib.Value
		}
	}
	switch n {
	case 0:
		return redcon.AppendNull(out)
	case 1:
		if value == nil {
			value = []byte{} // an empty value, not a nil reply
		}
		return redcon.AppendBulk(out, value)
	}
	// GET answers one value; choosing one of concurrent values would
	// silently drop the others (HTTP answers 300 with all of them).
	return redcon.AppendError(out, fmt.Sprintf("SIBLINGS the key has %d concurrent values; read them with DGET and write the resolved value with DSET key value CONTEXT ctx", n))
}

// cmdSet: SET key value replaces the value, as a Redis client expects: a
// write without context would instead become a sibling of what is there
// (so that SET k a; SET k b; GET k would find both). It is one write with
// node.Request.Replace: the coordinating replica stamps the new version on
// top of its own copy, in one round trip (an earlier SET read the key at
// R first and cost twice the work). What that replica holds covers every
// write it coordinated or received; a write acknowledged by the other
// replicas only and still on its way to this one stays a sibling, as a
// concurrent SET does, and nothing is lost. DSET without CONTEXT is the
// blind write.
func cmdSet(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	if len(args) > 3 {
		return nil, redcon.AppendError(nil, "ERR syntax error: SET options (EX, PX, NX, XX, GET, KEEPTTL...) are not supported: dynago has no expiry and no conditional writes; DSET writes with a context and a W")
	}
	key, e := s.key(args[1])
	if e != nil {
		return nil, e
	}
	if err := httpapi.CheckValueSize(int64(len(args[2])), s.cfg.MaxValueSize); err != nil {
		return nil, inputError(err)
	}
	return b.single(node.Request{Op: node.OpPut, Key: key, Value: args[2], Timeout: s.cfg.DefaultTimeout, Replace: true}, renderSet), nil
}

func renderSet(s *Server, req *node.Request, rep *node.Reply, out []byte) []byte {
	if rep.Code != node.CodeOK {
		return s.replyError(out, *req, *rep)
	}
	s.warnSiblings(*req, *rep)
	return redcon.AppendOK(out)
}

// warnSiblings logs a write that left its key above the soft sibling
// limit and counts it in dynago_sibling_warnings_total, the series HTTP's
// warnings count in. HTTP also tells the client (X-Dynago-Siblings);
// RESP's replies have no room for it, and DGET shows the siblings.
func (s *Server) warnSiblings(req node.Request, rep node.Reply) {
	if n := rep.SiblingCount(); n > 0 {
		s.siblingWarnings.Inc()
		s.cfg.Logger.Warn("resp: key has many siblings; clients should read and resolve them", "key", string(req.Key), "siblings", n)
	}
}

// keys checks every key argument.
func (s *Server) keys(args [][]byte) ([][]byte, []byte) {
	for _, a := range args {
		if _, e := s.key(a); e != nil {
			return nil, e
		}
	}
	return args, nil
}

// each runs f for every key, at most limit at once, and returns the number
// of true results or the first failure's reply. The limit matters: one
// command can name some hundred thousand keys.
func each(keys [][]byte, limit int, f func(key []byte) (bool, []byte)) (int64, []byte) {
	type result struct {
		ok  bool
		err []byte
	}
	res := make([]result, len(keys))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1)) - 1; i < len(keys); i = int(next.Add(1)) - 1 {
			res[i].ok, res[i].err = f(keys[i])
		}
	}
	var wg sync.WaitGroup
	for range min(len(keys), limit) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	var n int64
	for _, r := range res {
		if r.err != nil {
			return 0, r.err
		}
		if r.ok {
			n++
		}
	}
	return n, nil
}

func cmdExists(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	keys, e := s.keys(args[1:])
	if e != nil {
		return nil, e
	}
	j := b.newJob()
	j.reads = keys
	j.run = func(ctx context.Context, x exec, out []byte) []byte {
		n, e := each(keys, s.cfg.MaxInFlight, func(key []byte) (bool, []byte) {
			req := node.Request{Op: node.OpGet, Key: key, Timeout: s.cfg.DefaultTimeout}
			rep := x.do(ctx, req)
			if rep.Code != node.CodeOK && rep.Code != node.CodeNotFound {
				return false, s.replyError(nil, req, rep)
			}
			return len(live(rep)) > 0, nil
		})
		if e != nil {
			return append(out, e...)
		}
		return redcon.AppendInt(out, n)
	}
	return j, nil
}

// cmdDel deletes what it reads: a blind delete (no context) would leave
// the values it meant to remove as siblings of its tombstone. So each key
// is read and, when it has live values, a tombstone is written with the
// context read. The answer counts the keys that had a live value. A write
// concurrent with the DEL survives as a sibling, as in any Dynamo delete.
func cmdDel(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	keys, e := s.keys(args[1:])
	if e != nil {
		return nil, e
	}
	// A key named twice is deleted once and counted once, as in Redis
	// (and two concurrent deletes of one key would race).
	seen := make(map[string]bool, len(keys))
	uniq := keys[:0:0]
	for _, k := range keys {
		if !seen[string(k)] {
			seen[string(k)] = true
			uniq = append(uniq, k)
		}
	}
	keys = uniq
	j := b.newJob()
	j.writes = keys
	j.run = func(ctx context.Context, x exec, out []byte) []byte {
		n, e := each(keys, s.cfg.MaxInFlight, func(key []byte) (bool, []byte) {
			get := node.Request{Op: node.OpGet, Key: key, Timeout: s.cfg.DefaultTimeout}
			rep := x.do(ctx, get)
			if rep.Code != node.CodeOK && rep.Code != node.CodeNotFound {
				return false, s.replyError(nil, get, rep)
			}
			if len(live(rep)) == 0 {
				return false, nil
			}
			del := node.Request{Op: node.OpDelete, Key: key, Context: rep.Context, Timeout: s.cfg.DefaultTimeout}
			if rep := x.do(ctx, del); rep.Code != node.CodeOK {
				return false, s.replyError(nil, del, rep)
			}
			return true, nil
		})
		if e != nil {
			return append(out, e...)
		}
		return redcon.AppendInt(out, n)
	}
	return j, nil
}

// cmdDGet: DGET key [R n] [TIMEOUT ms] answers [context, value...]: the
// context ("" when the key has no history) and every live sibling. A
// missing or deleted key is [context] alone; a deleted key's context
// supersedes the tombstone.
func cmdDGet(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	key, e := s.key(args[1])
	if e != nil {
		return nil, e
	}
	opts, err := options(args[2:], "R", "TIMEOUT")
	if err != nil {
		return nil, inputError(err)
	}
	req, err := s.request(node.OpGet, key, opts)
	if err != nil {
		return nil, inputError(err)
	}
	return b.single(req, renderDGet), nil
}

func renderDGet(s *Server, req *node.Request, rep *node.Reply, out []byte) []byte {
	if rep.Code != node.CodeOK && rep.Code != node.CodeNotFound {
		return s.replyError(out, *req, *rep)
	}
	vs := live(*rep)
	out = redcon.AppendArray(out, 1+len(vs))
	out = redcon.AppendBulkString(out, httpapi.EncodeContextHeader(req.Key, rep.Context))
	for _, v := range vs {
		out = redcon.AppendBulk(out, v)
	}
	return out
}

// renderWrite is DSET's and DDEL's reply: the new version's context on
// success.
func renderWrite(s *Server, req *node.Request, rep *node.Reply, out []byte) []byte {
	if rep.Code != node.CodeOK {
		return s.replyError(out, *req, *rep)
	}
	s.warnSiblings(*req, *rep)
	return redcon.AppendBulkString(out, httpapi.EncodeContextHeader(req.Key, rep.Context))
}

// cmdDSet: DSET key value [CONTEXT ctx] [W n] [TIMEOUT ms].
func cmdDSet(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	key, e := s.key(args[1])
	if e != nil {
		return nil, e
	}
	if err := httpapi.CheckValueSize(int64(len(args[2])), s.cfg.MaxValueSize); err != nil {
		return nil, inputError(err)
	}
	opts, err := options(args[3:], "CONTEXT", "W", "TIMEOUT")
	if err != nil {
		return nil, inputError(err)
	}
	req, err := s.request(node.OpPut, key, opts)
	if err != nil {
		return nil, inputError(err)
	}
	req.Value = args[2]
	return b.single(req, renderWrite), nil
}

// cmdDDel: DDEL key [CONTEXT ctx] [W n] [TIMEOUT ms].
func cmdDDel(b *batch, args [][]byte) (*job, []byte) {
	s := b.s
	key, e := s.key(args[1])
	if e != nil {
		return nil, e
	}
	opts, err := options(args[2:], "CONTEXT", "W", "TIMEOUT")
	if err != nil {
		return nil, inputError(err)
	}
	req, err := s.request(node.OpDelete, key, opts)
	if err != nil {
		return nil, inputError(err)
	}
	return b.single(req, renderWrite), nil
}

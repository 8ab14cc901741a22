// SPDX-License-Identifier: (MIT OR GPL-2.0-only)
//
// Socket iterators that report, for every TCP socket (TIME-WAIT included)
// and every UDP socket of the reader's network namespace, the options that
// decide binds and lookups but that sock_diag does not carry: SO_REUSEADDR
// (skc_reuse), SO_REUSEPORT (skc_reuseport), IPV6_V6ONLY (skc_ipv6only),
// the bound device, the owner uid, and for TCP the bind bucket's cached
// fastreuse state (inet_bind_bucket, reached through icsk_bind_hash or a
// TIME-WAIT socket's tw_tb).
//
// Each socket becomes one fixed-size record written to the iterator's
// seq_file; live/bpfopts_linux.go parses them. The structs below are minimal
// CO-RE views of the kernel's (preserve_access_index): libbpf relocates
// every field access against the running kernel's BTF, so the object needs
// no vmlinux.h and loads on any kernel with BTF and these fields.
//
// Regenerate with `go generate ./live` (needs clang and libbpf headers).

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10
#define TCP_TIME_WAIT 6
#define TCP_NEW_SYN_RECV 12

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct ns_common {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct udp_hslot {
	int count;
} __attribute__((preserve_access_index));

struct udp_table {
	struct udp_hslot *hash;
	unsigned int mask;
} __attribute__((preserve_access_index));

struct netns_ipv4 {
	struct udp_table *udp_table; // Linux 6.2+
} __attribute__((preserve_access_index));

struct net {
	struct ns_common ns;
	__u32 hash_mix;
	struct netns_ipv4 ipv4;
} __attribute__((preserve_access_index));

typedef struct {
	struct net *net;
} possible_net_t;

typedef struct {
	__u32 val;
} kuid_t;

struct hlist_node {
	struct hlist_node *next;
} __attribute__((preserve_access_index));

struct sock_common {
	struct hlist_node skc_node; // in an anonymous union in the kernel
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	volatile unsigned char skc_state;
	unsigned char skc_reuse : 4;
	unsigned char skc_reuseport : 1;
	unsigned char skc_ipv6only : 1;
	int skc_bound_dev_if;
	possible_net_t skc_net;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct inode {
	unsigned long i_ino;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
} __attribute__((preserve_access_index));

struct sock;

struct socket {
	struct file *file;
	struct sock *sk;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	unsigned short sk_type;
	unsigned char sk_userlocks;
	struct socket *sk_socket;
	kuid_t sk_uid;
	unsigned long sk_ino;
} __attribute__((preserve_access_index));

struct inet_sock {
	struct sock sk;
} __attribute__((preserve_access_index));

struct inet_bind_bucket {
	unsigned short port;
	signed char fastreuse;
	signed char fastreuseport;
	kuid_t fastuid;
	struct in6_addr fast_v6_rcv_saddr;
	__be32 fast_rcv_saddr;
	unsigned short fast_sk_family;
	_Bool fast_ipv6_only;
} __attribute__((preserve_access_index));

struct inet_connection_sock {
	struct inet_sock icsk_inet;
	struct inet_bind_bucket *icsk_bind_hash;
} __attribute__((preserve_access_index));

struct tcp_sock {
	struct inet_connection_sock inet_conn;
} __attribute__((preserve_access_index));

struct inet_timewait_sock {
	struct sock_common __tw_common;
	unsigned int tw_connect_bind : 1; // Linux 6.18+
	struct inet_bind_bucket *tw_tb;
} __attribute__((preserve_access_index));

struct tcp_timewait_sock {
	struct inet_timewait_sock tw_sk;
} __attribute__((preserve_access_index));

struct udp_sock {
	struct inet_sock inet;
} __attribute__((preserve_access_index));

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
} __attribute__((preserve_access_index));

struct bpf_iter__tcp {
	struct bpf_iter_meta *meta;
	struct sock_common *sk_common;
	__u32 uid;
} __attribute__((preserve_access_index));

struct task_struct;

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
} __attribute__((preserve_access_index));

struct bpf_iter__udp {
	struct bpf_iter_meta *meta;
	struct udp_sock *udp_sk;
	__u32 uid;
	int bucket;
} __attribute__((preserve_access_index));

// One record per socket: 104 bytes, every field naturally aligned, integers
// in host byte order except the addresses (network order, as in the
// kernel).
struct record {
	__u64 ino;       // socket inode (0 for TIME-WAIT)
	__u32 netns;     // inode of the socket's network namespace
	__u32 uid;       // owner uid as the reader's user namespace sees it
	__s32 dev;       // skc_bound_dev_if
	__u32 fastuid;   // bucket: fastuid
	__u16 family;    // AF_INET or AF_INET6
	__u16 lport;     // local port
	__u16 rport;     // remote port
	__u16 fast_family; // bucket: fast_sk_family
	__u8 proto;      // 6 or 17
	__u8 state;      // skc_state
	__u8 reuse;      // skc_reuse (SO_REUSEADDR: 0 no, 1 yes, 2 forced)
	__u8 reuseport;  // skc_reuseport
	__u8 v6only;     // skc_ipv6only
	__u8 has_bucket; // 1 when the fast* fields were read
	__s8 fastreuse;
	__s8 fastreuseport;
	__u8 fast_v6only;
	__u8 connect_bind; // TCP: 2 the port was chosen by connect(), 1 it was bound, 0 unknown (before 6.18)
	__u16 chain;     // UDP: 1 + sockets after this one on its port's chain; 0xffff: too long to walk

	__u8 fast_v4[4];  // bucket: fast_rcv_saddr
	__u8 laddr[16];   // v4 addresses in the first 4 bytes
	__u8 raddr[16];
	__u8 fast_v6[16]; // bucket: fast_v6_rcv_saddr
	__u32 slot;       // UDP: 1 + the sockets in its port's primary hash slot (hslot->count); 0 unread
	__u32 pad;
};

// want_port, when not 0, keeps only sockets on that local port (set by the
// loader before the program is loaded).
volatile const __u16 want_port = 0;

// want_netns is the inode of the network namespace being read: the
// task_file iterator walks every process of the system, whose sockets may
// live in any namespace (the tcp and udp iterators walk only their own).
volatile const __u32 want_netns = 0;

static __always_inline void fill_common(struct record *r, struct sock_common *skc)
{
	r->family = skc->skc_family;
	r->state = skc->skc_state;
	r->lport = skc->skc_num;
	r->rport = __builtin_bswap16(skc->skc_dport);
	r->dev = skc->skc_bound_dev_if;
	r->reuse = BPF_CORE_READ_BITFIELD(skc, skc_reuse);
	r->reuseport = BPF_CORE_READ_BITFIELD(skc, skc_reuseport);
	r->v6only = BPF_CORE_READ_BITFIELD(skc, skc_ipv6only);
	struct net *net = skc->skc_net.net;
	if (net)
		r->netns = net->ns.inum;
	if (r->family == AF_INET6) {
		__builtin_memcpy(r->laddr, skc->skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(r->raddr, skc->skc_v6_daddr.in6_u.u6_addr8, 16);
	} else {
		__be32 l = skc->skc_rcv_saddr, d = skc->skc_daddr;
		__builtin_memcpy(r->laddr, &l, 4);
		__builtin_memcpy(r->raddr, &d, 4);
	}
}

static __always_inline void fill_sock(struct record *r, struct sock *sk)
{
	r->uid = sk->sk_uid.val;
	if (bpf_core_field_exists(sk->sk_ino)) {
		r->ino = sk->sk_ino;
	} else {
		struct socket *so = sk->sk_socket;
		if (so && so->file && so->file->f_inode)
			r->ino = so->file->f_inode->i_ino;
	}
}

// SOCK_CONNECT_BIND (include/net/sock.h, Linux 6.18): sk_userlocks flag of
// a socket whose port connect() chose; its TIME-WAIT keeps it as
// tw_connect_bind. A bucket whose holders all have it may be shared by
// another connect().
#define SOCK_CONNECT_BIND 16

static __always_inline void fill_connect_bind(struct record *r, struct sock *sk)
{
	if (!bpf_core_field_exists(((struct inet_timewait_sock *)0)->tw_connect_bind))
		return; // the kernel predates the flag
	r->connect_bind = (BPF_CORE_READ_BITFIELD(sk, sk_userlocks) & SOCK_CONNECT_BIND) ? 2 : 1;
}

static __always_inline void fill_bucket(struct record *r, struct inet_bind_bucket *tb)
{
	if (!tb)
		return;
	r->has_bucket = 1;
	r->fastreuse = tb->fastreuse;
	r->fastreuseport = tb->fastreuseport;
	r->fastuid = tb->fastuid.val;
	r->fast_family = tb->fast_sk_family;
	r->fast_v6only = tb->fast_ipv6_only;
	__be32 a = tb->fast_rcv_saddr;
	__builtin_memcpy(r->fast_v4, &a, 4);
	__builtin_memcpy(r->fast_v6, tb->fast_v6_rcv_saddr.in6_u.u6_addr8, 16);
}

SEC("iter/tcp")
int tcp_options(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct seq_file *seq = ctx->meta->seq;
	struct record r = {};

	if (!skc)
		return 0;
	if (skc->skc_state == TCP_NEW_SYN_RECV)
		return 0; // a request socket: no options of its own
	if (want_port && skc->skc_num != want_port)
		return 0;
	r.proto = 6;
	fill_common(&r, skc);
	if (skc->skc_state == TCP_TIME_WAIT) {
		struct tcp_timewait_sock *tw = bpf_skc_to_tcp_timewait_sock(skc);
		if (tw) {
			fill_bucket(&r, tw->tw_sk.tw_tb);
			if (bpf_core_field_exists(tw->tw_sk.tw_connect_bind))
				r.connect_bind = BPF_CORE_READ_BITFIELD(&tw->tw_sk, tw_connect_bind) ? 2 : 1;
		}
	} else {
		struct tcp_sock *tp = bpf_skc_to_tcp_sock(skc);
		if (!tp)
			return 0;
		fill_sock(&r, &tp->inet_conn.icsk_inet.sk);
		fill_connect_bind(&r, &tp->inet_conn.icsk_inet.sk);
		fill_bucket(&r, tp->inet_conn.icsk_bind_hash);
	}
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

#define TCP_CLOSE 7
#define SOCK_STREAM 1

// The tcp iterator walks the established and listening hash tables, so it
// never meets a TCP socket that is bound but neither listening nor
// connected (it sits only in the bind hash, which no iterator walks). This
// one reaches those through the descriptors that hold them: every open
// file of every process, kept when it is such a socket on a port. The
// reader drops duplicates (one socket, several descriptors).
SEC("iter/task_file")
int bound_tcp_options(struct bpf_iter__task_file *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	struct file *file = ctx->file;
	struct record r = {};

	if (!file)
		return 0;
	struct socket *so = bpf_sock_from_file(file);
	if (!so)
		return 0;
	struct sock *sk = so->sk;
	if (!sk || sk->sk_type != SOCK_STREAM)
		return 0;
	if (sk->__sk_common.skc_state != TCP_CLOSE || sk->__sk_common.skc_num == 0)
		return 0;
	if (want_port && sk->__sk_common.skc_num != want_port)
		return 0;
	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	r.proto = 6;
	fill_common(&r, &sk->__sk_common);
	if (want_netns && r.netns != want_netns)
		return 0;
	fill_sock(&r, sk);
	fill_connect_bind(&r, sk);
	fill_bucket(&r, tp->inet_conn.icsk_bind_hash);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

// MAX_CHAIN bounds the walk of a UDP port chain (chain_after).
#define MAX_CHAIN 512

// chain_after counts the sockets that follow skc on its port's hash chain
// (udptable->hash, linked through skc_node), plus one so that 0 stays
// "not read". udp_lib_lport_inuse walks that chain from its head, so
// where each socket of a port sits decides a bind; sock_diag dumps each
// address family on its own and loses the order across families.
static __always_inline __u16 chain_after(struct sock_common *skc)
{
	struct hlist_node *n = skc->skc_node.next;
	__u32 i;

	for (i = 0; i < MAX_CHAIN && n; i++)
		n = n->next;
	return n ? 0xffff : i + 1;
}

// slot_count is hslot->count of the primary hash slot that holds skc's
// port (udp_hashfn: port + net_hash_mix, masked), plus one so that 0
// stays "not read". With more than ten sockets there, udp_lib_get_port
// checks a bind to a specific address on the hash2 chains; the slot also
// holds the sockets of other ports and namespaces that hash to it, which
// no dump of one namespace shows.
static __always_inline __u32 slot_count(struct sock_common *skc)
{
	struct net *net = skc->skc_net.net;
	int count = 0;

	if (!net || !bpf_core_field_exists(net->ipv4.udp_table))
		return 0;
	struct udp_table *t = net->ipv4.udp_table;
	if (!t)
		return 0;
	__u32 idx = ((__u32)skc->skc_num + net->hash_mix) & t->mask;
	void *slot = (void *)t->hash + (__u64)idx * bpf_core_type_size(struct udp_hslot);
	if (bpf_probe_read_kernel(&count, sizeof(count), slot + bpf_core_field_offset(struct udp_hslot, count)))
		return 0;
	return (__u32)count + 1;
}

SEC("iter/udp")
int udp_options(struct bpf_iter__udp *ctx)
{
	struct udp_sock *up = ctx->udp_sk;
	struct seq_file *seq = ctx->meta->seq;
	struct record r = {};

	if (!up)
		return 0;
	struct sock *sk = &up->inet.sk;
	if (want_port && sk->__sk_common.skc_num != want_port)
		return 0;
	r.proto = 17;
	fill_common(&r, &sk->__sk_common);
	fill_sock(&r, sk);
	r.chain = chain_after(&sk->__sk_common);
	r.slot = slot_count(&sk->__sk_common);
	bpf_seq_write(seq, &r, sizeof(r));
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";

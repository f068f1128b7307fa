// Launcher for a local HDFS (Hadoop MiniDFSCluster) used by `python -m mdl.devcluster`.
//
// Runs without a compile step (Java 11+ single-file source launcher):
//   java -cp "$CP" MiniHdfs.java --base-dir DIR --nn-port 19820 --http-port 19870 \
//        --datanodes 3 --dn-http-ports 19864,19865,19866 --dn-ipc-ports 19867,19868,19869 \
//        --ready-file DIR/ready.json [--ha --nn1-port 19821 --nn1-http-port 19871] [--conf key=value ...]
//
// --ha: an HA nameservice "mdlns" of two NameNodes (MiniDFSNNTopology, shared edits dir as
// MiniDFSCluster sets it up); NameNode 0 listens on --nn-port/--http-port, NameNode 1 on
// --nn1-port/--nn1-http-port, and NameNode 0 is made active.
//
// Once the cluster is active it writes one JSON document to --ready-file (atomically) and
// prints the same JSON on stdout after the prefix "MDL_DEVCLUSTER_READY ".
//
// Control: a line-based TCP server on 127.0.0.1 (port in the ready JSON, or --control-port).
// One request per connection: "<token> <command> [arg]\n" -> one JSON line back.
// The token is read from the environment variable MDL_DEVCLUSTER_TOKEN (empty = none).
// Commands: status | stop I | start I (restart, same ports) | dead I (NameNode marks DataNode
// slot I dead at once) | shutdown; HA only: nnstatus | failover (active <-> standby) |
// nnstop I | nnstart I (shutdownNameNode / restartNameNode; the survivor is made active).  DataNode slots are stable indices 0..N-1 even though
// MiniDFSCluster reorders its own list when DataNodes are stopped and restarted.
//
// --secure --kdc-dir DIR --kdc-port P [--ticket-lifetime SECONDS]: Kerberos. An in-JVM MiniKdc
// (realm MDL.TEST, TCP on localhost:P; hadoop-minikdc must be on the classpath, it is loaded by
// reflection so the plain mode compiles without it) with principals hdfs/localhost, HTTP/localhost,
// HTTP/127.0.0.1 (DIR/hdfs.keytab) and client (DIR/client.keytab); DIR/krb5-client.conf for MIT
// clients. The cluster runs as hdfs/localhost (the superuser "hdfs"), WebHDFS wants SPNEGO, block
// access tokens and SASL data transfer ("authentication") are on; /user/client and /tmp (1777) exist.

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.permission.FsPermission;
import org.apache.hadoop.hdfs.HdfsConfiguration;
import org.apache.hadoop.hdfs.DFSTestUtil;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.hdfs.MiniDFSNNTopology;
import org.apache.hadoop.hdfs.protocol.DatanodeID;
import org.apache.hadoop.hdfs.server.blockmanagement.BlockManagerTestUtil;
import org.apache.hadoop.hdfs.server.blockmanagement.DatanodeDescriptor;
import org.apache.hadoop.hdfs.server.datanode.DataNode;
import org.apache.hadoop.hdfs.server.namenode.FSNamesystem;
import org.apache.hadoop.hdfs.server.namenode.NameNode;
import org.apache.hadoop.hdfs.server.namenode.NameNodeAdapter;
import org.apache.hadoop.security.UserGroupInformation;

public class MiniHdfs {
    private static MiniDFSCluster cluster;
    private static DataNode[] current;                       // running DataNode per slot, or null
    private static MiniDFSCluster.DataNodeProperties[] stopped; // props of a stopped slot
    private static DatanodeID[] ids;                         // last known DatanodeID per slot
    private static int[] xferPorts, httpPorts, ipcPorts;
    private static String token = "";
    private static boolean ha = false;
    private static int[] nnRpc, nnHttp;                      // fixed ports per NameNode
    static final String NAMESERVICE = "mdlns";
    private static volatile boolean shuttingDown = false;
    private static Object kdc;                               // secure mode: the MiniKdc
    static final String CLIENT = "client";

    public static void main(String[] argv) throws Exception {
        try {
            run(argv);
        } catch (Throwable e) {
            // MiniKdc's and Hadoop's non-daemon threads would keep a failed JVM alive
            e.printStackTrace();
            Runtime.getRuntime().halt(1);
        }
    }

    private static void run(String[] argv) throws Exception {
        String baseDir = null, readyFile = null, kdcDir = null;
        boolean secure = false;
        int kdcPort = 0;
        long ticketLifetime = 3600;
        int nnPort = 19820, httpPort = 19870, numDn = 3, controlPort = 0, nn1Port = 19821, nn1HttpPort = 19871;
        int[] dnHttp = null, dnIpc = null;
        List<String[]> confs = new ArrayList<>();
        for (int i = 0; i < argv.length; i++) {
            String a = argv[i];
            String v = (i + 1 < argv.length) ? argv[i + 1] : null;
            switch (a) {
                case "--base-dir": baseDir = v; i++; break;
                case "--ready-file": readyFile = v; i++; break;
                case "--nn-port": nnPort = Integer.parseInt(v); i++; break;
                case "--http-port": httpPort = Integer.parseInt(v); i++; break;
                case "--ha": ha = true; break;
                case "--nn1-port": nn1Port = Integer.parseInt(v); i++; break;
                case "--nn1-http-port": nn1HttpPort = Integer.parseInt(v); i++; break;
                case "--datanodes": numDn = Integer.parseInt(v); i++; break;
                case "--control-port": controlPort = Integer.parseInt(v); i++; break;
                case "--dn-http-ports": dnHttp = parsePorts(v); i++; break;
                case "--dn-ipc-ports": dnIpc = parsePorts(v); i++; break;
                case "--secure": secure = true; break;
                case "--kdc-dir": kdcDir = v; i++; break;
                case "--kdc-port": kdcPort = Integer.parseInt(v); i++; break;
                case "--ticket-lifetime": ticketLifetime = Long.parseLong(v); i++; break;
                case "--conf": {
                    int eq = v.indexOf('=');
                    if (eq <= 0) throw new IllegalArgumentException("--conf wants key=value: " + v);
                    confs.add(new String[] {v.substring(0, eq), v.substring(eq + 1)});
                    i++;
                    break;
                }
                default: throw new IllegalArgumentException("unknown argument: " + a);
            }
        }
        if (baseDir == null) throw new IllegalArgumentException("--base-dir is required");
        String t = System.getenv("MDL_DEVCLUSTER_TOKEN");
        token = t == null ? "" : t;

        Configuration conf = new HdfsConfiguration();
        conf.set("hdfs.minidfs.basedir", baseDir);
        conf.setInt("dfs.replication", Math.min(3, numDn));
        conf.setBoolean("dfs.webhdfs.enabled", true);
        conf.setBoolean("dfs.permissions.enabled", true);
        conf.setLong("dfs.heartbeat.interval", 1);
        conf.setInt("dfs.namenode.heartbeat.recheck-interval", 1000);
        conf.setInt("dfs.namenode.redundancy.interval.seconds", 1);
        conf.set("dfs.client.block.write.replace-datanode-on-failure.policy", "NEVER");
        conf.set("dfs.namenode.rpc-bind-host", "127.0.0.1");
        conf.set("dfs.namenode.http-bind-host", "127.0.0.1");
        if (ha) {
            // DataNodes' WebHDFS handlers reach the NameNodes through the nameservice id.
            conf.set("dfs.client.failover.proxy.provider." + NAMESERVICE,
                "org.apache.hadoop.hdfs.server.namenode.ha.ConfiguredFailoverProxyProvider");
            conf.setInt("dfs.ha.tail-edits.period", 1);
            conf.setInt("dfs.ha.log-roll.period", 10);
        }
        String secureJson = "";
        if (secure) {
            if (ha) throw new IllegalArgumentException("--secure and --ha cannot be combined");
            if (kdcDir == null) throw new IllegalArgumentException("--secure needs --kdc-dir");
            secureJson = startKdc(conf, new File(kdcDir).getAbsoluteFile(), kdcPort, ticketLifetime);
        }
        for (String[] kv : confs) conf.set(kv[0], kv[1]);
        if (secure) {
            UserGroupInformation.setConfiguration(conf);
            UserGroupInformation.loginUserFromKeytab("hdfs/localhost@" + REALM, new File(kdcDir, "hdfs.keytab").getPath());
        }

        MiniDFSCluster.Builder b = new MiniDFSCluster.Builder(conf, new File(baseDir))
            .numDataNodes(numDn)
            .format(true);
        if (ha) {
            nnRpc = new int[] {nnPort, nn1Port};
            nnHttp = new int[] {httpPort, nn1HttpPort};
            b.nnTopology(new MiniDFSNNTopology().addNameservice(new MiniDFSNNTopology.NSConf(NAMESERVICE)
                .addNN(new MiniDFSNNTopology.NNConf("nn0").setIpcPort(nnPort).setHttpPort(httpPort))
                .addNN(new MiniDFSNNTopology.NNConf("nn1").setIpcPort(nn1Port).setHttpPort(nn1HttpPort))));
        } else {
            nnRpc = new int[] {nnPort};
            nnHttp = new int[] {httpPort};
            b.nameNodePort(nnPort).nameNodeHttpPort(httpPort);
        }
        if (dnHttp != null) b.setDnHttpPorts(dnHttp);
        if (dnIpc != null) b.setDnIpcPorts(dnIpc);
        cluster = b.build();
        if (ha) cluster.transitionToActive(0);
        cluster.waitActive();
        cluster.waitClusterUp();

        current = new DataNode[numDn];
        stopped = new MiniDFSCluster.DataNodeProperties[numDn];
        ids = new DatanodeID[numDn];
        xferPorts = new int[numDn];
        httpPorts = new int[numDn];
        ipcPorts = new int[numDn];
        List<DataNode> dns = cluster.getDataNodes();
        for (int i = 0; i < numDn; i++) remember(i, dns.get(i));
        if (secure) {
            // A home for the client principal and a world-writable /tmp.
            FileSystem fs = cluster.getFileSystem();
            org.apache.hadoop.fs.Path home = new org.apache.hadoop.fs.Path("/user/" + CLIENT);
            fs.mkdirs(home);
            fs.setOwner(home, CLIENT, "supergroup");
            org.apache.hadoop.fs.Path tmp = new org.apache.hadoop.fs.Path("/tmp");
            fs.mkdirs(tmp);
            fs.setPermission(tmp, new FsPermission((short) 01777));
        }

        Runtime.getRuntime().addShutdownHook(new Thread(MiniHdfs::shutdownCluster, "mdl-shutdown"));

        ServerSocket server = new ServerSocket();
        server.setReuseAddress(true);
        server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), controlPort), 16);

        StringBuilder ready = new StringBuilder();
        ready.append("{\"pid\":").append(ProcessHandle.current().pid())
            .append(",\"nn_rpc_port\":").append(cluster.getNameNodePort(0))
            .append(",\"nn_http_port\":").append(cluster.getNameNode(0).getHttpAddress().getPort())
            .append(",\"ha\":").append(ha)
            .append(",\"namenodes\":").append(namenodesJson())
            .append(",\"control_port\":").append(server.getLocalPort())
            .append(",\"superuser\":").append(q(UserGroupInformation.getCurrentUser().getShortUserName()))
            .append(",\"base_dir\":").append(q(baseDir))
            .append(",\"datanodes\":").append(datanodesJson())
            .append(",\"secure\":").append(secure)
            .append(secureJson)
            .append("}");
        String json = ready.toString();
        if (readyFile != null) {
            Path target = Paths.get(readyFile);
            Path tmp = Paths.get(readyFile + ".tmp");
            Files.write(tmp, (json + "\n").getBytes(StandardCharsets.UTF_8));
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        }
        System.out.println("MDL_DEVCLUSTER_READY " + json);
        System.out.flush();

        while (!shuttingDown) {
            try (Socket s = server.accept()) {
                s.setSoTimeout(10000);
                handle(s);
            } catch (Exception e) {
                System.err.println("control connection failed: " + e);
            }
        }
    }

    private static int[] parsePorts(String v) {
        String[] parts = v.split(",");
        int[] out = new int[parts.length];
        for (int i = 0; i < parts.length; i++) out[i] = Integer.parseInt(parts[i].trim());
        return out;
    }

    private static void remember(int slot, DataNode dn) {
        current[slot] = dn;
        ids[slot] = dn.getDatanodeId();
        xferPorts[slot] = dn.getXferPort();
        httpPorts[slot] = dn.getInfoPort();
        ipcPorts[slot] = dn.getIpcPort();
    }

    private static void handle(Socket s) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(s.getInputStream(), StandardCharsets.UTF_8));
        String line = in.readLine();
        String reply;
        boolean exitAfter = false;
        if (line == null) return;
        String[] parts = line.trim().split("\\s+");
        int off = 0;
        if (!token.isEmpty()) {
            if (parts.length == 0 || !token.equals(parts[0])) {
                write(s, "{\"ok\":false,\"error\":\"bad token\"}");
                return;
            }
            off = 1;
        }
        String cmd = parts.length > off ? parts[off] : "";
        try {
            switch (cmd) {
                case "status": reply = ok(status()); break;
                case "stop": reply = ok(stop(slot(parts, off))); break;
                case "start": reply = ok(start(slot(parts, off))); break;
                case "dead": reply = ok(dead(slot(parts, off))); break;
                case "nnstatus": reply = ok(namenodesJson()); break;
                case "failover": reply = ok(failover()); break;
                case "nnstop": reply = ok(nnStop(nnIndex(parts, off))); break;
                case "nnstart": reply = ok(nnStart(nnIndex(parts, off))); break;
                case "shutdown": reply = "{\"ok\":true}"; exitAfter = true; break;
                default: reply = "{\"ok\":false,\"error\":" + q("unknown command: " + cmd) + "}";
            }
        } catch (Throwable e) {
            StringWriter sw = new StringWriter();
            e.printStackTrace(new PrintWriter(sw));
            System.err.println("command '" + line.substring(off == 1 ? token.length() : 0).trim() + "' failed: " + sw);
            reply = "{\"ok\":false,\"error\":" + q(e.toString()) + "}";
        }
        write(s, reply);
        if (exitAfter) {
            s.close();
            // Stop the cluster outside a shutdown hook: Hadoop's own shutdown-hook bookkeeping
            // throws "Shutdown in progress" when MiniDFSCluster.shutdown() runs inside one.
            shutdownCluster();
            System.exit(0);
        }
    }

    private static void write(Socket s, String reply) throws Exception {
        OutputStream out = s.getOutputStream();
        out.write((reply + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private static int slot(String[] parts, int off) {
        if (parts.length <= off + 1) throw new IllegalArgumentException("missing DataNode index");
        int i = Integer.parseInt(parts[off + 1]);
        if (i < 0 || i >= current.length)
            throw new IllegalArgumentException("DataNode index out of range 0.." + (current.length - 1) + ": " + i);
        return i;
    }

    private static int nnIndex(String[] parts, int off) {
        if (!ha) throw new IllegalStateException("not an HA cluster (start it with --ha)");
        if (parts.length <= off + 1) throw new IllegalArgumentException("missing NameNode index");
        int i = Integer.parseInt(parts[off + 1]);
        if (i < 0 || i >= nnRpc.length)
            throw new IllegalArgumentException("NameNode index out of range 0.." + (nnRpc.length - 1) + ": " + i);
        return i;
    }

    private static String ok(String body) {
        return "{\"ok\":true,\"result\":" + body + "}";
    }

    private static synchronized String stop(int i) throws Exception {
        if (current[i] == null) return dnJson(i);
        int idx = cluster.getDataNodes().indexOf(current[i]);
        if (idx < 0) throw new IllegalStateException("DataNode slot " + i + " not found in cluster");
        stopped[i] = cluster.stopDataNode(idx);
        current[i] = null;
        return dnJson(i);
    }

    private static synchronized String start(int i) throws Exception {
        if (current[i] != null) stop(i);
        MiniDFSCluster.DataNodeProperties props = stopped[i];
        if (!cluster.restartDataNode(props, true)) throw new IllegalStateException("restartDataNode returned false");
        List<DataNode> dns = cluster.getDataNodes();
        DataNode dn = dns.get(dns.size() - 1);
        stopped[i] = null;
        remember(i, dn);
        // Wait until the DataNode is registered with the NameNode and has sent a heartbeat.
        long deadline = System.currentTimeMillis() + 60000;
        while (!dn.isDatanodeFullyStarted() && System.currentTimeMillis() < deadline) Thread.sleep(100);
        cluster.triggerHeartbeats();
        remember(i, dn); // the DatanodeID is complete only after registration
        return dnJson(i);
    }

    private static synchronized String dead(int i) throws Exception {
        if (!ha) {
            cluster.setDataNodeDead(ids[i]);
            return dnJson(i);
        }
        for (int n = 0; n < nnRpc.length; n++) { // what setDataNodeDead does, on every running NameNode
            if (!nnRunning(n)) continue;
            FSNamesystem ns = cluster.getNamesystem(n);
            DatanodeDescriptor d = NameNodeAdapter.getDatanode(ns, ids[i]);
            if (d != null) DFSTestUtil.setDatanodeDead(d);
            BlockManagerTestUtil.checkHeartbeat(ns.getBlockManager());
        }
        return dnJson(i);
    }

    private static synchronized String status() {
        FSNamesystem ns = cluster.getNamesystem(primary());
        return "{\"live_datanodes\":" + ns.getNumLiveDataNodes() + ",\"dead_datanodes\":" + ns.getNumDeadDataNodes()
            + ",\"safemode\":" + ns.isInSafeMode() + ",\"ha\":" + ha
            + ",\"namenodes\":" + namenodesJson()
            + ",\"datanodes\":" + datanodesJson() + "}";
    }

    // ---- HA NameNodes

    private static boolean nnRunning(int n) {
        return cluster.getNameNode(n) != null;
    }

    private static int active() {
        for (int n = 0; n < nnRpc.length; n++)
            if (nnRunning(n) && cluster.getNameNode(n).isActiveState()) return n;
        return -1;
    }

    /** The active NameNode, else the first running one (the NameNode whose view status reports). */
    private static int primary() {
        int a = active();
        if (a >= 0) return a;
        for (int n = 0; n < nnRpc.length; n++) if (nnRunning(n)) return n;
        throw new IllegalStateException("no NameNode is running");
    }

    private static synchronized String failover() throws Exception {
        int a = active();
        int target = -1;
        for (int n = 0; n < nnRpc.length; n++) if (n != a && nnRunning(n)) { target = n; break; }
        if (target < 0) throw new IllegalStateException("no running standby NameNode to fail over to");
        if (a >= 0) cluster.transitionToStandby(a);
        cluster.transitionToActive(target);
        return namenodesJson();
    }

    private static synchronized String nnStop(int n) throws Exception {
        if (nnRunning(n)) cluster.shutdownNameNode(n);
        ensureActive();
        return namenodesJson();
    }

    private static synchronized String nnStart(int n) throws Exception {
        if (!nnRunning(n)) {
            cluster.restartNameNode(n, false); // true would wait for every NameNode, the stopped ones too
            cluster.waitActive(n);
        }
        ensureActive();
        return namenodesJson();
    }

    private static void ensureActive() throws Exception {
        if (active() >= 0) return;
        for (int n = 0; n < nnRpc.length; n++) {
            if (nnRunning(n)) {
                cluster.transitionToActive(n);
                return;
            }
        }
    }

    private static String namenodesJson() {
        StringBuilder sb = new StringBuilder("[");
        for (int n = 0; n < nnRpc.length; n++) {
            if (n > 0) sb.append(',');
            NameNode nn = cluster.getNameNode(n);
            String state = nn == null ? null : !ha ? "active" : nn.isActiveState() ? "active"
                : nn.isStandbyState() ? "standby" : nn.getState();
            sb.append("{\"index\":").append(n).append(",\"running\":").append(nn != null)
                .append(",\"state\":").append(q(state))
                .append(",\"rpc_port\":").append(nnRpc[n]).append(",\"http_port\":").append(nnHttp[n]).append('}');
        }
        return sb.append(']').toString();
    }

    private static String datanodesJson() {
        StringBuilder sb = new StringBuilder("[");
        for (int i = 0; i < current.length; i++) {
            if (i > 0) sb.append(',');
            sb.append(dnJson(i));
        }
        return sb.append(']').toString();
    }

    private static String dnJson(int i) {
        DataNode dn = current[i];
        boolean up = dn != null && dn.isDatanodeUp();
        return "{\"index\":" + i + ",\"running\":" + (dn != null) + ",\"up\":" + up
            + ",\"uuid\":" + q(dn != null ? dn.getDatanodeUuid() : ids[i] == null ? null : ids[i].getDatanodeUuid())
            + ",\"xfer_port\":" + xferPorts[i] + ",\"http_port\":" + httpPorts[i]
            + ",\"ipc_port\":" + ipcPorts[i] + "}";
    }

    private static synchronized void shutdownCluster() {
        if (shuttingDown) return;
        shuttingDown = true;
        MiniDFSCluster c = cluster;
        if (c != null) {
            try {
                c.shutdown();
            } catch (Throwable e) {
                // On SIGTERM (inside the JVM's shutdown hook) Hadoop cannot unregister its own hooks;
                // the process is exiting anyway and `down` deletes the data.
                System.err.println("MiniDFSCluster.shutdown: " + e);
            }
        }
        if (kdc != null) {
            try {
                kdc.getClass().getMethod("stop").invoke(kdc);
            } catch (Throwable e) {
                System.err.println("MiniKdc.stop: " + e);
            }
        }
    }

    // ---- secure mode (--secure)

    static final String REALM = "MDL.TEST";

    /** Starts the MiniKdc, writes keytabs and krb5-client.conf, sets the Kerberos keys of conf;
     *  returns the ready-JSON fields of the secure mode (each starting with a comma). */
    private static String startKdc(Configuration conf, File dir, int port, long ticketLifetime) throws Exception {
        dir.mkdirs();
        Class<?> k = Class.forName("org.apache.hadoop.minikdc.MiniKdc");
        Properties kconf = (Properties) k.getMethod("createConf").invoke(null);
        kconf.setProperty("kdc.bind.address", "localhost");
        kconf.setProperty("kdc.port", Integer.toString(port));
        kconf.setProperty("org.name", "MDL");
        kconf.setProperty("org.domain", "TEST"); // realm MDL.TEST
        kconf.setProperty("max.ticket.lifetime", Long.toString(ticketLifetime)); // seconds (kerby)
        kconf.setProperty("max.renewable.lifetime", Long.toString(ticketLifetime));
        kdc = k.getConstructor(Properties.class, File.class).newInstance(kconf, dir);
        k.getMethod("start").invoke(kdc); // sets -Djava.security.krb5.conf to DIR/krb5.conf
        String realm = (String) k.getMethod("getRealm").invoke(kdc);
        if (!REALM.equals(realm)) throw new IllegalStateException("unexpected realm " + realm);
        int kdcPort = (Integer) k.getMethod("getPort").invoke(kdc);
        File hdfsKeytab = new File(dir, "hdfs.keytab"), clientKeytab = new File(dir, "client.keytab");
        java.lang.reflect.Method create = k.getMethod("createPrincipal", File.class, String[].class);
        // HTTP/127.0.0.1 too: with principal "*" clients may use http://localhost or http://127.0.0.1
        create.invoke(kdc, hdfsKeytab, new String[] {"hdfs/localhost", "HTTP/localhost", "HTTP/127.0.0.1"});
        create.invoke(kdc, clientKeytab, new String[] {CLIENT});
        File javaKrb5 = (File) k.getMethod("getKrb5conf").invoke(kdc);

        // krb5.conf for MIT clients (kinit, python-gssapi): the KDC by TCP, no DNS games.
        File clientKrb5 = new File(dir, "krb5-client.conf");
        String krb5 = "[libdefaults]\n"
            + "  default_realm = " + REALM + "\n"
            + "  dns_lookup_realm = false\n"
            + "  dns_lookup_kdc = false\n"
            + "  dns_canonicalize_hostname = false\n"
            + "  rdns = false\n"
            + "  udp_preference_limit = 1\n"
            + "  ignore_acceptor_hostname = true\n"
            + "  forwardable = true\n"
            + "[realms]\n"
            + "  " + REALM + " = {\n"
            + "    kdc = localhost:" + kdcPort + "\n"
            + "  }\n"
            + "[domain_realm]\n"
            + "  localhost = " + REALM + "\n"
            + "  .localhost = " + REALM + "\n";
        Files.write(clientKrb5.toPath(), krb5.getBytes(StandardCharsets.UTF_8));

        String hdfsPrincipal = "hdfs/localhost@" + REALM, keytab = hdfsKeytab.getPath();
        conf.set("hadoop.security.authentication", "kerberos");
        conf.set("hadoop.security.authorization", "true");
        // The WebHDFS AuthFilter takes its type, principal and keytab from hadoop.http.authentication.*
        // (core-default: simple, anonymous allowed); "*": every HTTP/* principal of the keytab.
        conf.set("hadoop.http.authentication.type", "kerberos");
        conf.set("hadoop.http.authentication.kerberos.principal", "*");
        conf.set("hadoop.http.authentication.kerberos.keytab", keytab);
        conf.set("dfs.namenode.kerberos.principal", hdfsPrincipal);
        conf.set("dfs.namenode.keytab.file", keytab);
        conf.set("dfs.datanode.kerberos.principal", hdfsPrincipal);
        conf.set("dfs.datanode.keytab.file", keytab);
        conf.set("dfs.web.authentication.kerberos.principal", "HTTP/localhost@" + REALM);
        conf.set("dfs.web.authentication.kerberos.keytab", keytab);
        conf.setBoolean("dfs.block.access.token.enable", true);
        conf.set("dfs.data.transfer.protection", "authentication");
        conf.set("dfs.http.policy", "HTTP_ONLY");
        conf.setBoolean("ignore.secure.ports.for.testing", true);
        // Short KDC ticket lifetimes (--ticket-lifetime) must not break the cluster's own login.
        conf.setBoolean("hadoop.kerberos.keytab.login.autorenewal.enabled", true);
        conf.setLong("hadoop.kerberos.min.seconds.before.relogin", 1);
        return ",\"realm\":" + q(REALM) + ",\"kdc_port\":" + kdcPort
            + ",\"krb5_conf\":" + q(clientKrb5.getPath()) + ",\"java_krb5_conf\":" + q(javaKrb5.getPath())
            + ",\"hdfs_principal\":" + q(hdfsPrincipal) + ",\"hdfs_keytab\":" + q(keytab)
            + ",\"client_principal\":" + q(CLIENT + "@" + REALM) + ",\"client_keytab\":" + q(clientKeytab.getPath())
            + ",\"ticket_lifetime\":" + ticketLifetime;
    }

    private static String q(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': sb.append("\\\""); break;
                case '\\': sb.append("\\\\"); break;
                case '\n': sb.append("\\n"); break;
                case '\r': sb.append("\\r"); break;
                case '\t': sb.append("\\t"); break;
                default:
                    if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
                    else sb.append(c);
            }
        }
        return sb.append('"').toString();
    }
}

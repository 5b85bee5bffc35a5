// An embedded Tomcat 10 (Debian's libtomcat10-java) for zdgate's path-parameter tests: a servlet
// container interprets ";" path parameters and "..;" segments the way real Java apps behind zdgate
// do. /public/* and /admin answer who they think the user is (X-Forwarded-User) and which URI they
// served. Usage: java -cp ... PathParamApp BASEDIR. Prints {"port":N} on stdout once listening on
// 127.0.0.1:N (an ephemeral port) and exits when stdin closes, so it never outlives its test.
import java.io.IOException;

import jakarta.servlet.http.HttpServlet;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletResponse;
import org.apache.catalina.Context;
import org.apache.catalina.connector.Connector;
import org.apache.catalina.startup.Tomcat;

public class PathParamApp {
    public static void main(String[] args) throws Exception {
        Tomcat tomcat = new Tomcat();
        tomcat.setBaseDir(args[0]);
        Connector connector = new Connector();
        connector.setPort(0);
        connector.setProperty("address", "127.0.0.1");
        tomcat.setConnector(connector);
        Context ctx = tomcat.addContext("", null);
        Tomcat.addServlet(ctx, "public", new Echo("public"));
        ctx.addServletMappingDecoded("/public/*", "public");
        Tomcat.addServlet(ctx, "admin", new Echo("admin"));
        ctx.addServletMappingDecoded("/admin", "admin");
        ctx.addServletMappingDecoded("/admin/*", "admin");
        tomcat.start();
        System.out.println("{\"port\":" + connector.getLocalPort() + "}");
        System.out.flush();
        while (System.in.read() != -1) {
            // wait for the test to close stdin
        }
        tomcat.stop();
        System.exit(0);
    }

    static final class Echo extends HttpServlet {
        private final String name;

        Echo(String name) {
            this.name = name;
        }

        @Override
        protected void service(HttpServletRequest req, HttpServletResponse res) throws IOException {
            res.setContentType("text/plain");
            String user = req.getHeader("X-Forwarded-User");
            res.getWriter().print(name + " user=" + (user == null ? "" : user) + " uri=" + req.getRequestURI());
        }
    }
}

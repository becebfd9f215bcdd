"""A forwarding HTTP proxy in front of moto that counts the STS AssumeRole calls it passes on
(for bench/refresh.sh: how many times a script's credential_process really ran the chain).
  count_proxy.py PORT UPSTREAM_URL COUNT_FILE"""
import http.server
import sys
import urllib.request

port, upstream, count_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
calls = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global calls
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if b"Action=AssumeRole" in body:
            calls += 1
            with open(count_file, "w") as f:
                f.write(str(calls))
        req = urllib.request.Request(upstream + self.path, data=body, method="POST")
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length", "connection"):
                req.add_header(k, v)
        try:
            resp = urllib.request.urlopen(req)
            status, data, headers = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as e:
            status, data, headers = e.code, e.read(), e.headers
        self.send_response(status)
        self.send_header("Content-Type", headers.get("Content-Type", "text/xml"))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()

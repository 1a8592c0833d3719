<?php
// This page is served by the tokenusage binary (FastCGI or CGI); the web server routes
// this URL to it. The file exists so `try_files` and SCRIPT_FILENAME checks succeed.
http_response_code(503);
echo "tokenusage is not configured for this URL: see its README.";

<?php
/*
 * Sample ComusThumbz configuration for the tokenusage demo and tests.
 * A real installation's file holds much more; tokenusage reads only the
 * settings named in its README and skips every other statement.
 */

// Database settings (ignored by tokenusage).
$db_host = 'localhost';
$db_user = 'comus';
$db_pass = 'secret;with;semicolons';
$link = mysqli_connect($db_host, $db_user, $db_pass);

# License server credentials, used by Reports > Token Usage.
$license_config = array(
    'license_key' => 'DEMO-4F9A-1C2B-7E3D-90AB',
    'domain'      => 'demo.example.com',
    'email'       => 'owner@demo.example.com',
);

// A placeholder: the demo and the tests each copy this installation and point the
// copy at their own sample license API, on a free loopback port.
$license_config['api_url'] = 'http://127.0.0.1:8781/projects/api.php';

// When true, downloads are disabled (public demo sites).
define('DEMO_MODE', false);

date_default_timezone_set('UTC');
// No $admin_language: each admin gets the page in the language they ask for (?lang=,
// remembered) or their browser's. Setting it here would fix one language for everyone.

if (!defined('CT_ROOT')) {
    define('CT_ROOT', __DIR__ . '/..');
}
?>

<?php
const PREFIX = 'ck_', SCALE = 0x1F + 0b101 + 017 + 1_000;
define("EMAIL_DOMAIN", "example.com");
$license_config = [
    'license_key' => PREFIX . "live-\x41\u{1F600}\$notvar",
    'domain' => <<<EOT
      shop.example.com
      EOT,
    'email' => 'admin@' . EMAIL_DOMAIN,
    'demo_mode' => (bool) "0",
    "api_url" => 'https://license.example.net/api.php?x=\'1\'',
    5 => -1.5e3, '07' => .5, true => null, [1, 2, [3]],
];
$license_config['nested']['deep'][] = (int) '12abc';
$config = array('timezone' => 'Europe/Berlin', 'admin_language' => 'de',);
$demo_mode = !false;
if ($x) { $license_config = []; } // skipped, not run
/* a comment with ?> inside */ # hash comment
date_default_timezone_set('America/New_York');
return;
$license_config = null;

<?php
$license_config = array('license_key' => 'abc', 'domain' => 'd.example', 'email' =>
$license_config['email'] = "unterminated;
define('DEMO_MODE', 1 + );
$a = [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]];
$s = 'text'; $s['k'] = 1;
?>
<html>inline <?= $x ?> <?php $license_config['domain'] = 'after-html.example';

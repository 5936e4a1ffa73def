#!/usr/bin/ruby
# SPDX-License-Identifier: LGPL-2.1-or-later
# A mail app written in Ruby, as a Rails helpdesk would be. ruby-dbus (the
# Debian package ruby-dbus) cannot pass file descriptors, so it uses the
# byte-array methods: SignData, VerifyData, EncryptData, DecryptData.
#
#   ruby smimed-data.rb SENDER MESSAGE_FILE RECIPIENT...
#
# Asks whether it can sign as SENDER and encrypt to the RECIPIENTs (the
# composer's Sign and Encrypt buttons), signs MESSAGE_FILE as SENDER and
# verifies the result, encrypts it to every RECIPIENT and decrypts that
# again. Prints what it got, one "key: value" a line (tests/test-policy.c
# checks them). Exits 1 when a step fails.
require "dbus"

sender, message_file, *recipients = ARGV
abort "usage: smimed-data.rb SENDER MESSAGE_FILE RECIPIENT..." if recipients.empty?
message = File.binread(message_file)

# The system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names (ruby-dbus 0.16's
# SystemBus does not read it; a test's private bus is there).
address = ENV["DBUS_SYSTEM_BUS_ADDRESS"]
bus = address ? DBus::RemoteBus.new(address) : DBus::SystemBus.instance
manager = bus.service("org.smimed1").object("/org/smimed1")
manager.introspect
smimed = manager["org.smimed1.Manager"]

# Before composing: which buttons to enable, and why one is disabled.
sign, encrypt = smimed.GetCapabilities(sender, recipients, {})
puts "can-sign: #{sign["possible"]}"
encrypt.each do |r|
  puts "can-encrypt: #{r["address"]} #{r["possible"]} #{r["reason"]}"
end

signed, info = smimed.SignData(sender, message.bytes, {})
signed = signed.pack("C*")
puts "signer: #{info["signer"]}"
puts "signed-type: #{signed[/^Content-Type: [^;\r\n]*/]}"

content, status = smimed.VerifyData(signed.bytes, {})
puts "signature: #{status["signature"]}"
puts "content-matches: #{content.pack("C*").include?("Hello.")}"

encrypted, info = smimed.EncryptData(recipients, message.bytes, {})
encrypted = encrypted.pack("C*")
puts "recipients: #{info["recipients"].length}"
puts "encrypted-type: #{encrypted[/^Content-Type: [^;\r\n]*/]}"

# Decrypting picks, of the keys the message is encrypted to, one this
# program may use; "key" says which (option "key" would pick one).
decrypted, status = smimed.DecryptData(encrypted.bytes, {})
puts "encryption: #{status["encryption"]}"
puts "decrypted-with: #{status["key"]}"
puts "decrypted-matches: #{decrypted.pack("C*").include?("Hello.")}"

# Errors are D-Bus errors named org.smimed1.Error.*, with a message for the user.
begin
  smimed.SignData("nobody@example.com", message.bytes, {})
  puts "error: none"
rescue DBus::Error => e
  puts "error: #{e.name}"
end

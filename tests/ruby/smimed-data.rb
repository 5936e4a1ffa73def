#!/usr/bin/ruby
# SPDX-License-Identifier: LGPL-2.1-or-later
# A mail app written in Ruby, as a Rails helpdesk would be: ruby-dbus (the
# Debian package ruby-dbus) cannot pass file descriptors, so it uses the
# *Data methods. Signs MESSAGE_FILE as SENDER, verifies the result, and
# encrypts the message to SENDER; prints what it got, one "key: value" a
# line, for tests/test-policy.c.
#
#   ruby smimed-data.rb SENDER MESSAGE_FILE
require "dbus"

sender, message_file = ARGV
message = File.binread(message_file)

# The system bus, or the one DBUS_SYSTEM_BUS_ADDRESS names (ruby-dbus 0.16's
# SystemBus does not read it; a test's private bus is there).
address = ENV["DBUS_SYSTEM_BUS_ADDRESS"]
bus = address ? DBus::RemoteBus.new(address) : DBus::SystemBus.instance
manager = bus.service("org.smimed1").object("/org/smimed1")
manager.introspect
smimed = manager["org.smimed1.Manager"]

signed, info = smimed.SignData(sender, message.bytes, {})
signed = signed.pack("C*")
puts "signer: #{info["signer"]}"
puts "signed-size: #{signed.bytesize}"
puts "signed-type: #{signed[/^Content-Type: [^;\r\n]*/]}"

content, status = smimed.VerifyData(signed.bytes, {})
puts "signature: #{status["signature"]}"
puts "content-matches: #{content.pack("C*").include?("Hello.")}"

encrypted, info = smimed.EncryptData([sender], message.bytes, {})
puts "recipients: #{info["recipients"].length}"
puts "encrypted-type: #{encrypted.pack("C*")[/^Content-Type: [^;\r\n]*/]}"

begin
  smimed.SignData("nobody@example.com", message.bytes, {})
  puts "error: none"
rescue DBus::Error => e
  puts "error: #{e.name}"
end

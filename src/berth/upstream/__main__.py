from berth.upstream.command import main

main(prog_name="./dev upstream")
